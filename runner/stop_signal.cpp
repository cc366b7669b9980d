#include "runner/stop_signal.hpp"

#include <atomic>
#include <csignal>

namespace diffpool {

namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }
}  // namespace

void install_stop_handlers() {
  struct sigaction action{};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGUSR1, SIGINT}) sigaction(s, &action, nullptr);
}

bool stop_requested() { return g_stop_signal.load() != 0; }

int stop_signal_number() { return g_stop_signal.load(); }

}  // namespace diffpool
