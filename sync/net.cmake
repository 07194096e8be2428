# The network layer: the company CA (pki.c) and the TLS transport (tls.c)
# on mbedtls, used by the server, the client's sync and the admin tools.
add_library(fs_net STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pki.c
                          ${CMAKE_CURRENT_SOURCE_DIR}/tls.c)
target_link_libraries(fs_net PUBLIC fs_sync ${MBEDTLS_LIBRARIES}
                                    Threads::Threads)
target_include_directories(fs_net PUBLIC ${MBEDTLS_INCLUDE_DIR})
