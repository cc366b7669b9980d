#pragma once
// What build of diffpool this is, as recorded in every job file and summary.
namespace diffpool {

// The project's version (CMake's PROJECT_VERSION, for example "0.1.0"), written into a generated
// source when CMake configures (runner/build_version.cpp.in).
const char* build_version();

// The checkout's HEAD when this binary was built (12 hex digits, "-dirty" when tracked files had
// changes, "unknown" outside a git checkout). Taken at every build, not at CMake's configure
// step (cmake/git_revision.cmake).
const char* build_git_revision();

}  // namespace diffpool
