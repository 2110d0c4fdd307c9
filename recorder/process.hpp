// Child processes and signals for lockrec: perf and COMMAND are started from argv vectors (never a
// shell), and lockrec sees signals and child exits as events on one signalfd, so no signal handler
// races with the code that starts and stops perf.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lockscope::recorder {

// Blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD for the life of the object and delivers them through a
// signalfd; blocks SIGPIPE so a write to a dead perf fails with EPIPE. Children get the original
// mask back before exec.
class SignalWatch {
 public:
  SignalWatch();
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  int fd() const { return fd_; }
  const sigset_t& original_mask() const { return original_mask_; }

  struct Received {
    int signal;
    bool sent_by_a_process;  // kill(2) from someone, rather than the terminal or the kernel
  };
  // The next queued signal, if any, without waiting.
  std::optional<Received> take();
  // The stop signal (INT, TERM or HUP) received so far and not yet acted on, if any.
  std::optional<Received> take_stop_request();

 private:
  int fd_ = -1;
  sigset_t blocked_;
  sigset_t original_mask_;
};

bool is_stop_signal(int signal);

// Writes one line "lockrec: LINE" on stderr.
void say(const std::string& line);

// How long a wait on another program lasts before lockrec says what it is waiting for, and how often
// it says so again. Short enough that nobody takes a silent lockrec for a hung one.
inline constexpr std::chrono::seconds first_wait_notice{5};
inline constexpr std::chrono::seconds repeated_wait_notice{30};

// A wait that is never silent: once it has lasted `first_after`, it says on stderr what lockrec is
// waiting for, and again every `again_every` with the time waited so far. The owner calls
// due_in_ms() for its poll timeout and tick() after each wake-up.
class WaitNotice {
 public:
  using Clock = std::chrono::steady_clock;
  WaitNotice(std::string what, std::chrono::milliseconds first_after, std::chrono::milliseconds again_every);
  // Says the notice if it is due.
  void tick();
  // Milliseconds until the next notice is due (0 if it is due now): a poll timeout.
  int due_in_ms() const;

 private:
  std::string what_;
  Clock::time_point started_;
  Clock::time_point next_notice_;
  std::chrono::milliseconds again_every_;
};

// What a child did, from its wait status.
std::string describe_wait_status(int wait_status);
// The exit code a shell would report for that wait status: the exit code, or 128 + signal.
int shell_exit_code(int wait_status);

// Waits for the child `pid` to end and returns its wait status. For a child that has ended or is
// about to (its pipe closed, it was killed).
int wait_for(pid_t pid);

// Waits for the child `pid` to end and returns its wait status; if that takes longer than a few
// seconds, says on stderr that lockrec waits for `what`, and again while it lasts.
int wait_for_saying(pid_t pid, const std::string& what);

// Runs argv to completion with lockrec's original signal mask and in its own process group (so a
// Ctrl-C meant for COMMAND does not cut a perf probe in half). Returns the wait status.
int run_to_completion(const std::vector<std::string>& argv, const SignalWatch& signals);

// Runs argv and returns its wait status and what it printed on stdout and stderr together; if it
// could not be started, `started` is false and `output` says why.
struct Captured {
  bool started = false;
  int wait_status = 0;
  std::string output;
};
Captured run_and_capture(const std::vector<std::string>& argv, const SignalWatch& signals);

// Starts argv. `prepare` runs in the child just before exec (after the signal mask is restored) and
// must only make async-signal-safe calls. If exec fails, the child is reaped and `exec_errno` says why.
struct Started {
  pid_t pid = -1;
  int exec_errno = 0;
};
Started start_process(const std::vector<std::string>& argv, const SignalWatch& signals,
                      const std::function<void()>& prepare);

// SIGKILLs `root` and every process descended from it, and the orphans this process adopted as a
// child subreaper (PR_SET_CHILD_SUBREAPER) with theirs, except `spare` (perf). Descendants are
// found by their parent pid in /proc; a COMMAND's workers that ignore SIGINT die with it.
void kill_process_tree(pid_t root, pid_t spare);

}  // namespace lockscope::recorder
