#pragma once
// What build of diffpool this is, as recorded in every job file and summary.
namespace diffpool {

// The checkout's HEAD when this binary was built (12 hex digits, "-dirty" when tracked files had
// changes, "unknown" outside a git checkout). Taken at every build, not at CMake's configure
// step (cmake/git_revision.cmake).
const char* build_git_revision();

}  // namespace diffpool
