# The region node: wire codec, Berkeley DB store, ZeroMQ transport, the daemon,
# the client library and the CLI. Each layer is a static library built from the
# sources in its folder; adapters depend on the core, never the reverse.
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
find_path(BDB_INCLUDE_DIR db.h REQUIRED)
find_library(BDB_LIBRARY NAMES db db-5.3 REQUIRED)
find_program(PROTOC_C protoc-c REQUIRED)

set(CW_GEN_DIR ${PROJECT_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${CW_GEN_DIR}/wire)
add_custom_command(
  OUTPUT ${CW_GEN_DIR}/wire/causeway.pb-c.c ${CW_GEN_DIR}/wire/causeway.pb-c.h
  COMMAND ${PROTOC_C} --c_out=${CW_GEN_DIR}/wire -I${PROJECT_SOURCE_DIR}/src/wire
          ${PROJECT_SOURCE_DIR}/src/wire/causeway.proto
  DEPENDS ${PROJECT_SOURCE_DIR}/src/wire/causeway.proto
  COMMENT "protoc-c: generating the wire code from causeway.proto")
# Generated code is not ours to warn about.
set_source_files_properties(${CW_GEN_DIR}/wire/causeway.pb-c.c PROPERTIES COMPILE_OPTIONS "-w")

file(GLOB CW_WIRE_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/wire/*.c)
add_library(cw_wire STATIC ${CW_WIRE_SOURCES} ${CW_GEN_DIR}/wire/causeway.pb-c.c)
target_include_directories(cw_wire PUBLIC ${CW_GEN_DIR})
target_link_libraries(cw_wire PUBLIC cw_core PkgConfig::PROTOBUFC PkgConfig::LZ4)
# Linked into libcauseway, whose interface is include/causeway.h alone: the
# static layers in it are compiled with hidden visibility (cw_strerror, the one
# public function the core defines, is marked CW_EXPORT in its header).
set_target_properties(cw_wire PROPERTIES C_VISIBILITY_PRESET hidden)
if(TARGET cw_core)
  set_target_properties(cw_core PROPERTIES C_VISIBILITY_PRESET hidden)
endif()

file(GLOB CW_STORE_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/store/*.c)
add_library(cw_store STATIC ${CW_STORE_SOURCES})
target_include_directories(cw_store PUBLIC ${BDB_INCLUDE_DIR})
# db.h needs the BSD types (u_int, u_long) that _POSIX_C_SOURCE alone hides.
target_compile_definitions(cw_store PRIVATE _DEFAULT_SOURCE)
target_link_libraries(cw_store PUBLIC cw_core ${BDB_LIBRARY})

file(GLOB CW_NET_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/net/*.c)
add_library(cw_net STATIC ${CW_NET_SOURCES})
target_link_libraries(cw_net PUBLIC cw_core cw_wire PkgConfig::ZMQ)

file(GLOB CW_SERVER_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/server/*.c)
list(REMOVE_ITEM CW_SERVER_SOURCES ${PROJECT_SOURCE_DIR}/src/server/main.c
     ${PROJECT_SOURCE_DIR}/src/server/config.c)
# The config parser is shared by the daemon and the CLI (--config FILE --region NAME).
add_library(cw_config STATIC ${PROJECT_SOURCE_DIR}/src/server/config.c)
target_link_libraries(cw_config PUBLIC cw_core PkgConfig::INIH)
add_library(cw_server STATIC ${CW_SERVER_SOURCES})
target_link_libraries(cw_server PUBLIC cw_core cw_config cw_wire cw_store cw_net)

if(EXISTS ${PROJECT_SOURCE_DIR}/src/server/main.c)
  add_executable(causewayd ${PROJECT_SOURCE_DIR}/src/server/main.c)
  target_link_libraries(causewayd PRIVATE cw_server)
  install(TARGETS causewayd RUNTIME DESTINATION bin)
endif()

file(GLOB CW_CLIENT_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/client/*.c)
if(CW_CLIENT_SOURCES)
  # libcauseway: the C client library behind include/causeway.h.
  add_library(causeway SHARED ${CW_CLIENT_SOURCES} ${PROJECT_SOURCE_DIR}/src/net/netclient.c
                              ${PROJECT_SOURCE_DIR}/src/net/curvekeys.c
                              ${PROJECT_SOURCE_DIR}/src/net/netutil.c)
  target_include_directories(causeway PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(causeway PRIVATE cw_wire cw_core PkgConfig::ZMQ PkgConfig::JANSSON)
  # Only the API of include/causeway.h (and causeway/error.h) is exported: the
  # library's own code is compiled with hidden visibility (the headers mark the
  # public functions CW_EXPORT), and the version script makes every other
  # symbol local whatever its visibility (a static layer built some other way,
  # sanitizer instrumentation). The ctest case libcauseway_exports checks the
  # result with nm.
  set(CW_CLIENT_MAP ${PROJECT_SOURCE_DIR}/src/client/libcauseway.map)
  target_link_options(causeway PRIVATE "LINKER:--version-script=${CW_CLIENT_MAP}")
  set_target_properties(causeway PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 0
                                            C_VISIBILITY_PRESET hidden
                                            LINK_DEPENDS ${CW_CLIENT_MAP})
  include(GNUInstallDirs)
  install(TARGETS causeway LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${PROJECT_SOURCE_DIR}/include/causeway.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/causeway DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  configure_file(${PROJECT_SOURCE_DIR}/tools/causeway.pc.in ${PROJECT_BINARY_DIR}/causeway.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/causeway.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  if(EXISTS ${PROJECT_SOURCE_DIR}/tools/cli/causeway.c)
    # keygen writes key files with the transport's key code (libcauseway keeps it
    # private), so the CLI compiles it in.
    add_executable(causeway-cli ${PROJECT_SOURCE_DIR}/tools/cli/causeway.c
                                ${PROJECT_SOURCE_DIR}/tools/cli/escape.c
                                ${PROJECT_SOURCE_DIR}/src/net/curvekeys.c
                                ${PROJECT_SOURCE_DIR}/src/net/netutil.c)
    set_target_properties(causeway-cli PROPERTIES OUTPUT_NAME causeway)
    target_compile_definitions(causeway-cli PRIVATE CW_VERSION_TEXT="${PROJECT_VERSION}")
    target_link_libraries(causeway-cli PRIVATE causeway cw_config PkgConfig::ZMQ)
    install(TARGETS causeway-cli RUNTIME DESTINATION bin)
    install(FILES ${PROJECT_SOURCE_DIR}/docs/causeway.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
            OPTIONAL)
  endif()
  # Berkeley DB's own put rate: the baseline for causeway's large-value throughput.
  add_executable(bdb-bench ${PROJECT_SOURCE_DIR}/tools/bench/bdb-bench.c)
  target_include_directories(bdb-bench PRIVATE ${BDB_INCLUDE_DIR})
  target_link_libraries(bdb-bench PRIVATE ${BDB_LIBRARY})
  if(EXISTS ${PROJECT_SOURCE_DIR}/tools/bench/causeway-bench.c)
    add_executable(causeway-bench ${PROJECT_SOURCE_DIR}/tools/bench/causeway-bench.c)
    target_link_libraries(causeway-bench PRIVATE causeway cw_config m)
    install(TARGETS causeway-bench RUNTIME DESTINATION bin)
  endif()
  # The bare ZeroMQ request/reply ceiling that tools/bench-run divides by.
  if(EXISTS ${PROJECT_SOURCE_DIR}/tools/bench/zmq-echo.c)
    find_package(Threads REQUIRED)
    add_executable(zmq-echo ${PROJECT_SOURCE_DIR}/tools/bench/zmq-echo.c)
    target_link_libraries(zmq-echo PRIVATE cw_core PkgConfig::ZMQ Threads::Threads)
  endif()
  # The social-feed demo: causal vs eventual vs strong, with anomaly counts and charts.
  if(EXISTS ${PROJECT_SOURCE_DIR}/tools/feed/feed.c)
    add_executable(causeway-feed ${PROJECT_SOURCE_DIR}/tools/feed/feed.c)
    find_package(Threads REQUIRED)
    target_link_libraries(causeway-feed PRIVATE causeway cw_config Threads::Threads m)
    install(TARGETS causeway-feed RUNTIME DESTINATION bin)
  endif()
endif()
