# Install test of issue "Runtime core": `cmake --install` of this build into a temporary prefix,
# examples/plugin-ticker-scale built out of tree with make against that prefix only, and the
# installed tickflow running it. The test installs whatever the build holds, so it depends on
# every install target (the executable and every plugin).
find_program(TF_MAKE_PROGRAM NAMES gmake make)

tf_add_test(integration_install SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_install.c
    LIBS tf_proc LABELS integration TIMEOUT 300)
get_property(tf_install_plugin_targets GLOBAL PROPERTY TF_PLUGIN_TARGETS)
add_dependencies(integration_install tickflow source_generate sink_stdout
    ${tf_install_plugin_targets})

if(TF_SANITIZE)
    set(tf_install_sanitize 1)
else()
    set(tf_install_sanitize 0)
endif()
target_compile_definitions(integration_install PRIVATE
    TFI_BUILD_DIR="${CMAKE_BINARY_DIR}"
    TFI_CMAKE="${CMAKE_COMMAND}"
    TFI_MAKE="${TF_MAKE_PROGRAM}"
    TFI_PKG_CONFIG="${PKG_CONFIG_EXECUTABLE}"
    TFI_CC="${CMAKE_C_COMPILER}"
    TFI_BINDIR="${CMAKE_INSTALL_BINDIR}"
    TFI_LIBDIR="${CMAKE_INSTALL_LIBDIR}"
    TFI_INCLUDEDIR="${CMAKE_INSTALL_INCLUDEDIR}"
    TFI_SANITIZE=${tf_install_sanitize})
