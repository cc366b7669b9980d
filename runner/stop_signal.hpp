#pragma once
// SIGTERM, SIGUSR1 and SIGINT ask a run to stop: the handlers only record the signal; the task
// farm and the running job poll it, checkpoint and exit with status 75 (run_command.hpp).
namespace diffpool {

// Installs the handlers for SIGTERM, SIGUSR1 and SIGINT (they only set a flag).
void install_stop_handlers();
bool stop_requested();
// The number of the last stop signal received, 0 when none.
int stop_signal_number();

}  // namespace diffpool
