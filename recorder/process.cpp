#include "process.hpp"

#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <thread>
#include <utility>

namespace lockscope::recorder {

namespace {

constexpr std::array<int, 3> stop_signals = {SIGINT, SIGTERM, SIGHUP};

std::string errno_text(int error) { return std::strerror(error); }

// How often a wait for a child that may run a while looks whether it has ended. Signals are blocked
// here (the signalfd gets them), so the nap cannot be cut short, and no wake-up can be lost: the
// next look comes at most this much later.
constexpr std::chrono::milliseconds child_poll_interval{20};

// Child side of start_process: never returns. Reports an exec failure through `report_fd`.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, const sigset_t& mask,
                             const std::function<void()>& prepare, int report_fd) {
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  if (prepare) prepare();
  std::vector<char*> args;
  for (const auto& word : argv) args.push_back(const_cast<char*>(word.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  int error = errno;
  [[maybe_unused]] auto written = write(report_fd, &error, sizeof error);
  _exit(127);
}

}  // namespace

int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error("waitpid failed: " + errno_text(errno));
  }
  return status;
}

void say(const std::string& line) { std::cerr << "lockrec: " << line << std::endl; }

WaitNotice::WaitNotice(std::string what, std::chrono::milliseconds first_after, std::chrono::milliseconds again_every)
    : what_(std::move(what)), started_(Clock::now()), next_notice_(started_ + first_after), again_every_(again_every) {}

void WaitNotice::tick() {
  auto now = Clock::now();
  if (now < next_notice_) return;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
  say("still waiting for " + what_ + " (" + std::to_string(seconds) + " s so far)");
  next_notice_ = now + again_every_;
}

int WaitNotice::due_in_ms() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_notice_ - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, std::numeric_limits<int>::max()));
}

int wait_for_saying(pid_t pid, const std::string& what) {
  WaitNotice notice(what, first_wait_notice, repeated_wait_notice);
  while (true) {
    int status = 0;
    pid_t ended = waitpid(pid, &status, WNOHANG);
    if (ended == pid) return status;
    if (ended < 0 && errno != EINTR) throw Error("waitpid failed: " + errno_text(errno));
    notice.tick();
    std::this_thread::sleep_for(child_poll_interval);
  }
}

SignalWatch::SignalWatch() {
  sigset_t watched;
  sigemptyset(&watched);
  for (int signal : stop_signals) sigaddset(&watched, signal);
  sigaddset(&watched, SIGCHLD);
  // SIGPIPE is blocked too (not watched): writing perf's control pipe after perf died must fail
  // with EPIPE, not kill lockrec. Blocking rather than ignoring it, because children inherit an
  // ignored SIGPIPE through exec but get the original mask back.
  // A shell without job control starts a background job with SIGINT ignored, and an ignored signal
  // is dropped before it could reach the signalfd: `lockrec ... &` in a script would not stop on
  // `kill -INT`, where perf record does. SIGINT and SIGTERM always end a recording, so they get
  // their default action back (never taken while blocked here; COMMAND and perf inherit it, as
  // perf's own workload does). An ignored SIGHUP stays ignored: that is nohup's whole point.
  for (int signal : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    if (sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) ::signal(signal, SIG_DFL);
  }
  blocked_ = watched;
  sigaddset(&blocked_, SIGPIPE);
  if (sigprocmask(SIG_BLOCK, &blocked_, &original_mask_) != 0) throw Error("sigprocmask failed: " + errno_text(errno));
  fd_ = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) throw Error("signalfd failed: " + errno_text(errno));
}

SignalWatch::~SignalWatch() {
  close(fd_);
  // Signals still pending were not acted on (a SIGPIPE from a dead perf, a late second Ctrl-C):
  // drop them rather than let them kill lockrec after it has decided how to exit.
  sigset_t blocked = blocked_;
  const timespec no_wait = {0, 0};
  while (sigtimedwait(&blocked, nullptr, &no_wait) > 0) {
  }
  sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
}

std::optional<SignalWatch::Received> SignalWatch::take() {
  signalfd_siginfo info;
  ssize_t got = read(fd_, &info, sizeof info);
  if (got != static_cast<ssize_t>(sizeof info)) return std::nullopt;
  bool from_process = info.ssi_code == SI_USER || info.ssi_code == SI_QUEUE;
  return Received{static_cast<int>(info.ssi_signo), from_process};
}

std::optional<SignalWatch::Received> SignalWatch::take_stop_request() {
  // SIGCHLD notes read here carry nothing: callers reap their children by pid.
  while (auto received = take()) {
    if (is_stop_signal(received->signal)) return received;
  }
  return std::nullopt;
}

bool is_stop_signal(int signal) {
  return std::find(stop_signals.begin(), stop_signals.end(), signal) != stop_signals.end();
}

std::string describe_wait_status(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return std::string("was killed by signal ") + sigabbrev_np(WTERMSIG(wait_status)) + " (" +
           std::to_string(WTERMSIG(wait_status)) + ")";
  return "stopped with wait status " + std::to_string(wait_status);
}

int shell_exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return kExitLockrecFailed;
}

Started start_process(const std::vector<std::string>& argv, const SignalWatch& signals,
                      const std::function<void()>& prepare) {
  // The child writes its exec errno into this pipe; exec closes it (O_CLOEXEC), so an empty read
  // means the program is running.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw Error("pipe failed: " + errno_text(errno));
  pid_t pid = fork();
  if (pid < 0) throw Error("fork failed: " + errno_text(errno));
  if (pid == 0) {
    close(report[0]);
    exec_child(argv, signals.original_mask(), prepare, report[1]);
  }
  close(report[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(report[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    wait_for(pid);
    return {-1, exec_errno};
  }
  return {pid, 0};
}

int run_to_completion(const std::vector<std::string>& argv, const SignalWatch& signals) {
  Started started = start_process(argv, signals, [] { setpgid(0, 0); });
  if (started.pid < 0) throw Error("cannot run " + argv[0] + ": " + errno_text(started.exec_errno));
  return wait_for_saying(started.pid, argv[0] + (argv.size() > 1 ? " " + argv[1] : "") + " (pid " +
                                          std::to_string(started.pid) + ") to finish");
}

Captured run_and_capture(const std::vector<std::string>& argv, const SignalWatch& signals) {
  int output[2];
  if (pipe2(output, O_CLOEXEC) != 0) throw Error("pipe failed: " + errno_text(errno));
  Started started = start_process(argv, signals, [&] {
    setpgid(0, 0);
    dup2(output[1], STDOUT_FILENO);
    dup2(output[1], STDERR_FILENO);
  });
  close(output[1]);
  Captured captured;
  std::string what = argv[0] + (argv.size() > 1 ? " " + argv[1] : "") + " to finish";
  WaitNotice notice(what, first_wait_notice, repeated_wait_notice);
  char buffer[4096];
  while (true) {
    pollfd readable = {output[0], POLLIN, 0};
    int ready = poll(&readable, 1, notice.due_in_ms());
    notice.tick();
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    if (ready < 0) break;
    ssize_t got = read(output[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    captured.output.append(buffer, static_cast<size_t>(got));
  }
  close(output[0]);
  if (started.pid < 0) {
    captured.output = "cannot run " + argv[0] + ": " + errno_text(started.exec_errno);
    return captured;
  }
  captured.started = true;
  captured.wait_status = wait_for_saying(started.pid, what);
  return captured;
}

namespace {

// Parent pid of every process, from /proc/PID/stat ("PID (comm) STATE PPID ..."; comm may hold
// spaces and parentheses, so the fields are read after its last ')').
std::multimap<pid_t, pid_t> children_by_parent() {
  std::multimap<pid_t, pid_t> children;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // it ended meanwhile
    size_t comm_end = line.rfind(')');
    if (comm_end == std::string::npos) continue;
    int parent = 0;  // after the state letter
    if (std::sscanf(line.c_str() + comm_end + 1, " %*c %d", &parent) != 1) continue;
    children.emplace(static_cast<pid_t>(parent), static_cast<pid_t>(std::stoi(name)));
  }
  return children;
}

}  // namespace

void kill_process_tree(pid_t root, pid_t spare) {
  std::multimap<pid_t, pid_t> children = children_by_parent();
  std::vector<pid_t> doomed = {root};
  auto adopted = children.equal_range(getpid());
  for (auto it = adopted.first; it != adopted.second; ++it) {
    if (it->second != root && it->second != spare) doomed.push_back(it->second);
  }
  for (size_t i = 0; i < doomed.size(); ++i) {
    auto range = children.equal_range(doomed[i]);
    for (auto it = range.first; it != range.second; ++it) doomed.push_back(it->second);
  }
  for (pid_t pid : doomed) kill(pid, SIGKILL);
}

}  // namespace lockscope::recorder
