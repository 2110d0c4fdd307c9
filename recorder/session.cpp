// One lockrec run: check, add probes, record while COMMAND runs, remove probes, write side files.
#include "process.hpp"

#include <boost/algorithm/string/join.hpp>
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace lockscope::recorder {

namespace {

using boost::algorithm::join;

// ---- privileges and perf ----------------------------------------------------------------------

bool has_capabilities(std::initializer_list<int> capabilities) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("CapEff:")) continue;
    uint64_t effective = std::stoull(line.substr(7), nullptr, 16);
    for (int capability : capabilities)
      if (!(effective & (uint64_t{1} << capability))) return false;
    return true;
  }
  return false;
}

bool is_privileged() {
  constexpr int cap_sys_admin = 21;
  constexpr int cap_perfmon = 38;
  return geteuid() == 0 || has_capabilities({cap_perfmon, cap_sys_admin});
}

// "6.1" from "perf version 6.1.192" or from "6.18.44-fc-v782".
std::string major_minor(std::string_view version) {
  auto start = version.find_first_of("0123456789");
  if (start == std::string_view::npos) return "";
  version.remove_prefix(start);
  auto first_dot = version.find('.');
  auto end = version.find_first_not_of("0123456789", first_dot + 1);
  return std::string(version.substr(0, end));
}

PerfFacts check_perf(const Options& options, const SignalWatch& signals) {
  Captured version = run_and_capture({options.perf, "--version"}, signals);
  std::string first = version.output.substr(0, version.output.find('\n'));
  bool runs = version.started && WIFEXITED(version.wait_status) && WEXITSTATUS(version.wait_status) == 0;
  return {runs, runs || !first.empty() ? first : describe_wait_status(version.wait_status)};
}

// ---- tracefs ----------------------------------------------------------------------------------

// On a fresh machine nothing has mounted tracefs yet; perf mounts it itself where it is missing,
// and so does lockrec, as root, on the running system only (a --system-root tree is the tests'
// fake one, only ever read). Without root the preflight says what to do.
void mount_tracefs_if_missing(const KernelView& kernel, const Options& options, bool privileged) {
  if (kernel.tracefs() || !privileged || options.system_root != "/") return;
  constexpr const char* mount_point = "/sys/kernel/tracing";
  if (mount("nodev", mount_point, "tracefs", 0, nullptr) == 0) {
    say(std::string("tracefs was not mounted; mounted it at ") + mount_point + ", as perf does");
    return;
  }
  int tracefs_errno = errno;
  // Kernels before 4.1 have no tracefs of their own: their tracing/ lives in debugfs.
  constexpr const char* debugfs_mount_point = "/sys/kernel/debug";
  if (mount("nodev", debugfs_mount_point, "debugfs", 0, nullptr) == 0 && kernel.tracefs()) {
    say(std::string("tracefs was not mounted; mounted debugfs at ") + debugfs_mount_point +
        ", whose tracing/ this kernel has, as perf does");
    return;
  }
  throw Error(std::string("tracefs is not mounted, and mounting it at ") + mount_point +
              " failed: " + std::strerror(tracefs_errno))
      .hint("mount it: mount -t tracefs nodev /sys/kernel/tracing");
}

// ---- kprobes -----------------------------------------------------------------------------------

// Only one lockrec may own the lockrec probe group at a time: a second one would take the first
// one's probes for stale ones and remove them. The lock dies with the process, so a killed lockrec
// never blocks the next one.
class RecorderLock {
 public:
  // Takes the lock if no other lockrec holds it; held() says whether it did.
  explicit RecorderLock(const KernelView& kernel) {
    std::filesystem::path file = kernel.path("/run/lock/lockrec.lock");
    fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(std::string("cannot open: ") + std::strerror(errno)).file(file.string());
    held_ = flock(fd_, LOCK_EX | LOCK_NB) == 0;
  }
  ~RecorderLock() { close(fd_); }
  RecorderLock(const RecorderLock&) = delete;
  RecorderLock& operator=(const RecorderLock&) = delete;

  bool held() const { return held_; }
  void require() const {
    if (!held_)
      throw Error("another lockrec is recording with kprobes")
          .hint("wait for it to finish, or record with --mode contention");
  }

 private:
  int fd_ = -1;
  bool held_ = false;
};

// Two lockrecs writing one FILE would move each other's recording to FILE.old and pair side files
// with the wrong recording. FILE itself cannot carry the lock (perf renames it): one byte of a
// shared lock file does, at an offset named after FILE's absolute path (a POSIX record lock, so a
// second lockrec can tell whose it is; one file, so nothing accumulates in /run/lock).
class OutputLock {
 public:
  OutputLock(const KernelView& kernel, const std::filesystem::path& output) {
    std::string absolute = std::filesystem::weakly_canonical(std::filesystem::absolute(output)).string();
    uint64_t hash = 14695981039346656037ull;  // FNV-1a: a stable offset for the path
    for (unsigned char c : absolute) hash = (hash ^ c) * 1099511628211ull;
    std::filesystem::path file = kernel.path("/run/lock/lockrec-outputs.lock");
    std::error_code ignored;
    std::filesystem::create_directories(file.parent_path(), ignored);
    fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) throw Error(std::string("cannot open: ") + std::strerror(errno)).file(file.string());
    fchmod(fd_, 0666);  // every user's lockrec locks its outputs here (umask would narrow it)
    struct flock byte {};
    byte.l_type = F_WRLCK;
    byte.l_whence = SEEK_SET;
    byte.l_start = static_cast<off_t>(hash >> 2);  // positive, and far past any real content
    byte.l_len = 1;
    if (fcntl(fd_, F_SETLK, &byte) != 0) {
      std::string holder;
      if (fcntl(fd_, F_GETLK, &byte) == 0 && byte.l_type != F_UNLCK)
        holder = " (pid " + std::to_string(byte.l_pid) + ")";
      close(fd_);
      throw Error("another lockrec" + holder + " is recording to " + output.string())
          .hint("give this one another -o FILE, or wait for that one to finish");
    }
  }
  ~OutputLock() { close(fd_); }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

void delete_probe_group(const KernelView& kernel, const Options& options, const SignalWatch& signals) {
  int status = run_to_completion(probe_delete_command(options), signals);
  auto left = kernel.probe_events_in_group(probe_group);
  if (!left.empty())
    throw Error("could not remove " + std::to_string(left.size()) + " " + std::string(probe_group) + " probes (" +
                shell_quote(probe_delete_command(options)) + " " + describe_wait_status(status) + ")")
        .hint("remove them by hand: " + shell_quote(probe_delete_command(options)));
}

// Removes probes a killed lockrec left behind. Returns how many there were.
size_t remove_stale_probes(const KernelView& kernel, const Options& options, const SignalWatch& signals) {
  auto stale = kernel.probe_events_in_group(probe_group);
  if (stale.empty()) return 0;
  say("removing " + std::to_string(stale.size()) + " probes of group " + std::string(probe_group) +
      " left by an earlier lockrec that did not finish: " + join(stale, " "));
  delete_probe_group(kernel, options, signals);
  return stale.size();
}

// The probes of one recording: added on construction, removed by remove() or, if an error unwinds
// past it, by the destructor.
class ProbeSession {
 public:
  // Adds the plan's probes. All at once first (one perf probe run reads kallsyms once); if perf
  // probe refuses that, one by one, so one function the kernel will not probe costs that function
  // alone: it moves to the plan's skipped rows.
  ProbeSession(const KernelView& kernel, const Options& options, ProbePlan& plan, const SignalWatch& signals)
      : kernel_(kernel), options_(options), signals_(signals) {
    add(plan);
    expect_planned_events(plan);
  }
  ~ProbeSession() {
    try {
      remove();
    } catch (const Error& error) {
      say(error.what());
    }
  }
  ProbeSession(const ProbeSession&) = delete;
  ProbeSession& operator=(const ProbeSession&) = delete;

  void remove() {
    if (removed_) return;
    removed_ = true;
    remove_group();
  }

 private:
  void add(ProbePlan& plan) {
    int status = run_to_completion(probe_add_command(options_, plan), signals_);
    if (status == 0) return;
    remove_group();  // perf probe may have added some before failing
    say("perf probe could not add all probes at once (" + describe_wait_status(status) +
        "); adding them one by one to find those it refuses");
    std::vector<ChosenProbe> accepted;
    for (const auto& probe : plan.chosen) {
      ProbePlan single;
      single.chosen = {probe};
      if (run_to_completion(probe_add_command(options_, single), signals_) == 0) {
        accepted.push_back(probe);
      } else {
        say("skipping " + probe.event + ": perf probe refused it");
        plan.skipped.push_back({probe.row, "perf probe refused it"});
      }
    }
    plan.chosen = std::move(accepted);
    if (plan.chosen.empty()) {
      remove();
      throw Error("perf probe refused every probe (its messages are above)");
    }
  }

  // perf probe chooses event names itself in places (a return probe's suffix); perf record would
  // only say "unknown tracepoint". Every event lockrec is about to record must exist by its name.
  void expect_planned_events(const ProbePlan& plan) {
    std::vector<std::string> created = kernel_.probe_events_in_group(probe_group);
    std::vector<std::string> missing;
    for (const auto& event : plan.events()) {
      if (std::find(created.begin(), created.end(), event) == created.end()) missing.push_back(event);
    }
    if (missing.empty()) return;
    remove();
    throw Error("perf probe did not create " + join(missing, " ") + " (group " + std::string(probe_group) + " holds " +
                std::to_string(created.size()) + " events, not these)")
        .hint(
            "this perf names probe events differently from perf 6.1; use --mode contention, or the perf "
            "matching the kernel (Debian: linux-perf)");
  }

  void remove_group() {
    if (!kernel_.probe_events_in_group(probe_group).empty()) delete_probe_group(kernel_, options_, signals_);
  }

  const KernelView& kernel_;
  const Options& options_;
  const SignalWatch& signals_;
  bool removed_ = false;
};

// ---- the recording -----------------------------------------------------------------------------

struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) throw Error(std::string("pipe failed: ") + std::strerror(errno));
    read_end = ends[0];
    write_end = ends[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (read_end >= 0) close(read_end);
    read_end = -1;
  }
  void close_write() {
    if (write_end >= 0) close(write_end);
    write_end = -1;
  }
};

// In perf's child: put the control pipe at perf_control_fd and the ack pipe at perf_ack_fd. Both
// are first moved above the targets, so placing one never overwrites the other.
//
// perf also keeps a copy of the control pipe's write end, which it never writes to. perf 6.1 quits
// at once when its control fd reads end-of-file, before it has finished the file ("Thread and
// evlist pollfd index mismatch", then a data size of 0 that perf script refuses); without the copy
// that happens the moment lockrec is killed and the kernel closes lockrec's write end. With it,
// only a signal ends perf: SIGINT from lockrec, or the parent-death SIGINT if lockrec is killed.
void place_control_fds(int control_read, int control_write, int ack_write) {
  constexpr int above_targets = 10;
  int control = fcntl(control_read, F_DUPFD_CLOEXEC, above_targets);
  int ack = fcntl(ack_write, F_DUPFD_CLOEXEC, above_targets);
  fcntl(control_write, F_DUPFD, above_targets);  // F_DUPFD: this copy stays open across exec
  dup2(control, perf_control_fd);                // and so do descriptors dup2 makes
  dup2(ack, perf_ack_fd);
}

// Once perf record has been asked to stop, how often lockrec asks again while it waits. perf treats
// every SIGINT like the first, so a repeat costs nothing, and one that was lost (a wrapper that
// missed it, a stand-in shell script that caught it just before blocking) cannot hang the recording.
constexpr std::chrono::seconds perf_stop_repeat_interval{2};

struct Outcome {
  std::optional<int> command_status;  // wait status; none if COMMAND never ran
  int command_exec_errno = 0;
  std::optional<int> perf_status;  // wait status of perf record
  bool perf_stopped_by_us = false;
  std::optional<int> stop_signal;  // a stop signal lockrec received
};

class Recording {
 public:
  Recording(const Options& options, const std::vector<std::string>& events, SignalWatch& signals)
      : options_(options), signals_(signals), argv_(record_command(options, events)) {}

  const std::vector<std::string>& argv() const { return argv_; }

  Outcome run(std::string_view mode_name) {
    start_perf();
    if (!wait_for_perf_ack()) return finish();
    if (options_.command.empty()) {
      // -a, or -p PID alone: perf records until a stop signal (or, with -p, until PID ends).
      say("recording in " + std::string(mode_name) + " mode to " + options_.output.string() +
          (options_.pid ? " while process " + std::to_string(*options_.pid) + " runs" : " system-wide") +
          "; stop with Ctrl-C");
      return finish();
    }
    // COMMAND's orphans become lockrec's children, not init's: a second stop signal finds them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    Started command = start_process(options_.command, signals_, nullptr);
    if (command.pid < 0) {
      outcome_.command_exec_errno = command.exec_errno;
      stop_perf();
      return finish();
    }
    command_pid_ = command.pid;
    say("recording in " + std::string(mode_name) + " mode to " + options_.output.string() + " while " +
        shell_quote(options_.command) + " runs");
    return finish();
  }

 private:
  void start_perf() {
    pid_t lockrec = getpid();
    int control_read = control_.read_end, control_write = control_.write_end, ack_write = ack_.write_end;
    Started perf = start_process(argv_, signals_, [=] {
      // Its own process group: a Ctrl-C at the terminal reaches COMMAND and lockrec, and lockrec
      // stops perf once, after COMMAND; perf never sees a second, half-handled SIGINT.
      setpgid(0, 0);
      // If lockrec is killed, the kernel sends perf SIGINT, on which perf finishes the file and
      // exits, as when lockrec stops it. (perf keeps its control pipe open, see place_control_fds,
      // so this signal is what ends it.) If lockrec died before the signal was set up, nothing would
      // send it: perf is not started at all then.
      prctl(PR_SET_PDEATHSIG, SIGINT);
      if (getppid() != lockrec) _exit(kExitLockrecFailed);
      int null = open("/dev/null", O_RDONLY);
      dup2(null, STDIN_FILENO);
      place_control_fds(control_read, control_write, ack_write);
    });
    if (perf.pid < 0)
      throw Error("cannot run " + argv_[0] + ": " + std::strerror(perf.exec_errno))
          .hint("install perf (Debian: apt-get install linux-perf)");
    perf_pid_ = perf.pid;
    control_.close_read();
    ack_.close_write();
  }

  // Enables the events and waits for perf's ack. False if perf ended or a stop signal came first.
  bool wait_for_perf_ack() {
    constexpr std::string_view enable = "enable\n";
    if (write(control_.write_end, enable.data(), enable.size()) != static_cast<ssize_t>(enable.size())) {
      // perf is gone already; its exit status tells why.
      outcome_.perf_status = wait_for(perf_pid_);
      perf_pid_ = -1;
      return false;
    }
    WaitNotice notice("perf record (pid " + std::to_string(perf_pid_) + ") to start recording: it has not " +
                          "answered 'enable' on its control pipe",
                      first_wait_notice, repeated_wait_notice);
    while (true) {
      pollfd watched[2] = {{ack_.read_end, POLLIN, 0}, {signals_.fd(), POLLIN, 0}};
      int ready = poll(watched, 2, notice.due_in_ms());
      notice.tick();
      if (ready < 0) {
        if (errno == EINTR) continue;
        throw Error(std::string("poll failed: ") + std::strerror(errno));
      }
      if (watched[0].revents) {
        char reply[16];
        ssize_t got = read(ack_.read_end, reply, sizeof reply);
        if (got > 0) return true;
        // EOF: perf exited before enabling its events (it may have been reaped already).
        if (perf_pid_ > 0) outcome_.perf_status = wait_for(perf_pid_);
        perf_pid_ = -1;
        return false;
      }
      if (watched[1].revents && handle_signals()) return false;
    }
  }

  // Reads queued signals; true once something ended the recording before COMMAND started.
  bool handle_signals() {
    act_on_stop_signals();
    reap();
    return perf_pid_ < 0 || outcome_.stop_signal.has_value();
  }

  void act_on_stop_signals() {
    // SIGCHLD needs nothing here: reap() asks each child by pid.
    while (auto received = signals_.take()) {
      if (is_stop_signal(received->signal)) on_stop_signal(*received);
    }
  }

  void on_stop_signal(const SignalWatch::Received& received) {
    bool repeated = outcome_.stop_signal.has_value();
    outcome_.stop_signal = received.signal;
    if (command_pid_ > 0) {
      // A Ctrl-C at the terminal reached COMMAND already; a kill(1) aimed at lockrec did not.
      if (received.sent_by_a_process) kill(command_pid_, received.signal);
      // The second stop signal ends COMMAND outright, with the workers it started: they may
      // ignore SIGINT (stress-ng's do), or have been orphaned and adopted by lockrec.
      if (repeated) kill_process_tree(command_pid_, perf_pid_);
    }
    stop_perf();
  }

  void stop_perf() {
    if (perf_pid_ > 0 && !outcome_.perf_stopped_by_us) {
      kill(perf_pid_, SIGINT);  // perf record finishes writing the file on SIGINT
      outcome_.perf_stopped_by_us = true;
      last_stop_request_ = std::chrono::steady_clock::now();
      stopping_notice_.emplace("perf record (pid " + std::to_string(perf_pid_) + ") to finish writing " +
                                   options_.output.string() + "; SIGINT is sent again every " +
                                   std::to_string(perf_stop_repeat_interval.count()) + " s",
                               first_wait_notice, repeated_wait_notice);
    }
  }

  // While perf has been asked to stop and has not: ask again now and then, say so now and then.
  // Returns the poll timeout until the next of these is due, or -1 if none is.
  int remind_perf_to_stop() {
    if (perf_pid_ <= 0 || !outcome_.perf_stopped_by_us) return -1;
    auto now = std::chrono::steady_clock::now();
    if (now - last_stop_request_ >= perf_stop_repeat_interval) {
      kill(perf_pid_, SIGINT);
      last_stop_request_ = now;
    }
    stopping_notice_->tick();
    auto next_request =
        std::chrono::duration_cast<std::chrono::milliseconds>(last_stop_request_ + perf_stop_repeat_interval - now)
            .count();
    return std::min(static_cast<int>(std::max<int64_t>(next_request, 0)), stopping_notice_->due_in_ms());
  }

  void reap() {
    int status;
    if (command_pid_ > 0 && waitpid(command_pid_, &status, WNOHANG) == command_pid_) {
      command_pid_ = -1;
      outcome_.command_status = status;
      stop_perf();
    }
    if (perf_pid_ > 0 && waitpid(perf_pid_, &status, WNOHANG) == perf_pid_) {
      perf_pid_ = -1;
      outcome_.perf_status = status;
      // Without perf there is no recording: stop COMMAND rather than let it run unobserved.
      if (command_pid_ > 0 && !outcome_.perf_stopped_by_us) kill(command_pid_, SIGTERM);
    }
  }

  // Waits until both COMMAND and perf have ended, acting on signals meanwhile.
  Outcome finish() {
    while (command_pid_ > 0 || perf_pid_ > 0) {
      pollfd watched = {signals_.fd(), POLLIN, 0};
      // A child may have ended before the signalfd was polled: reap first, then sleep in poll.
      reap();
      if (command_pid_ <= 0 && perf_pid_ <= 0) break;
      int timeout_ms = remind_perf_to_stop();
      if (poll(&watched, 1, timeout_ms) < 0 && errno != EINTR)
        throw Error(std::string("poll failed: ") + std::strerror(errno));
      act_on_stop_signals();
    }
    return outcome_;
  }

  const Options& options_;
  SignalWatch& signals_;
  std::vector<std::string> argv_;
  Pipe control_, ack_;
  pid_t perf_pid_ = -1;
  pid_t command_pid_ = -1;
  Outcome outcome_;
  std::chrono::steady_clock::time_point last_stop_request_;
  std::optional<WaitNotice> stopping_notice_;
};

bool perf_ended_well(const Outcome& outcome) {
  if (!outcome.perf_status) return false;
  int status = *outcome.perf_status;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  // perf record re-raises the SIGINT that stopped it once the file is written.
  return outcome.perf_stopped_by_us && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT;
}

// ---- the modes lockrec runs in ---------------------------------------------------------------

// Options the user gave that change only kprobes would otherwise be dropped without a word.
void note_kprobe_only_options(const Options& options) {
  std::vector<std::string> given = kprobe_only_options(options);
  if (given.empty()) return;
  say("note: " + join(given, ", ") + (given.size() == 1 ? " has" : " have") +
      " no effect in contention mode (only kprobe mode's probes use them)");
}

// Each problem on a line of its own, since each says what to do about itself; then lockrec stops.
int report_problems(const std::vector<std::string>& problems) {
  for (const auto& problem : problems) say(problem);
  return kExitLockrecFailed;
}

int run_cleanup(const KernelView& kernel, const Options& options) {
  SignalWatch signals;
  if (!kernel.has_kprobe_events()) {
    say("this kernel has no kprobe_events, so there are no lockrec probes to remove");
    return 0;
  }
  RecorderLock only_one(kernel);
  only_one.require();
  if (remove_stale_probes(kernel, options, signals) == 0) say("no lockrec probes to remove");
  return 0;
}

int run_dry(const KernelView& kernel, const Options& options) {
  mount_tracefs_if_missing(kernel, options, is_privileged());
  if (auto problems = kernel_problems(kernel, options); !problems.empty()) return report_problems(problems);
  Mode mode = resolve_mode(kernel, options.mode);
  say("dry run: the perf commands of a recording in " + std::string(name_of(mode)) + " mode, in order");
  std::vector<std::string> events = contention_events();
  // Stale probes are removed first in either mode.
  if (!kernel.probe_events_in_group(probe_group).empty())
    std::cout << shell_quote(probe_delete_command(options)) << "\n";
  if (mode == Mode::kprobe) {
    ProbePlan plan = plan_probes(kernel, options);
    std::cerr << format_skipped_table(plan);
    if (plan.chosen.empty()) throw Error("none of lockrec's probe functions is in this kernel");
    std::cout << shell_quote(probe_add_command(options, plan)) << "\n";
    events = plan.events();
  } else {
    note_kprobe_only_options(options);
  }
  std::cout << shell_quote(record_command(options, events)) << "\n";
  if (mode == Mode::kprobe) std::cout << shell_quote(probe_delete_command(options)) << "\n";
  return 0;
}

// COMMAND as execvp would find it: the path itself if it holds a '/', else the first match on PATH.
// Returns the status a shell gives for a command it cannot run (127 not found, 126 not executable),
// having said why; nothing when COMMAND can run (or there is none).
std::optional<int> command_cannot_run(const Options& options) {
  if (options.command.empty()) return std::nullopt;
  const std::string& name = options.command[0];
  auto executable_file = [](const std::string& path) {
    struct stat facts;
    return stat(path.c_str(), &facts) == 0 && S_ISREG(facts.st_mode) && access(path.c_str(), X_OK) == 0;
  };
  auto exists = [](const std::string& path) { return access(path.c_str(), F_OK) == 0; };
  bool found_but_not_executable = false;
  if (name.find('/') != std::string::npos) {
    if (executable_file(name)) return std::nullopt;
    found_but_not_executable = exists(name);
  } else {
    const char* search_path = getenv("PATH");
    std::istringstream directories(search_path ? search_path : "/usr/local/bin:/usr/bin:/bin");
    std::string directory;
    while (std::getline(directories, directory, ':')) {
      std::string candidate = (directory.empty() ? "." : directory) + "/" + name;
      if (executable_file(candidate)) return std::nullopt;
      found_but_not_executable |= exists(candidate);
    }
  }
  say("cannot run " + name + ": " +
      (found_but_not_executable              ? "it is not an executable file"
       : name.find('/') != std::string::npos ? "no such file"
                                             : "not found in PATH") +
      "; nothing was recorded");
  return found_but_not_executable ? kExitCommandNotExecutable : kExitCommandNotFound;
}

// perf record moves an existing FILE aside and writes FILE; some outputs cannot be that.
void refuse_unusable_output(const Options& options) {
  if (options.output == "-")
    throw Error(
        "-o - (a pipe-mode stream to stdout) is not supported: COMMAND's own output would go into it, "
        "and FILE.kallsyms and FILE.lockrec.json need a file name")
        .hint("record to a file; lockanalyze reads pipe-mode streams that perf record -o - wrote");
  namespace fs = std::filesystem;
  std::error_code error;
  const std::string output = options.output.string();
  fs::file_status status = fs::status(options.output, error);
  if (fs::is_directory(status))
    throw Error("-o " + output + " is a directory; perf would rename it to " + output + ".old")
        .hint("give -o the path of a file");
  // perf record writes a file it can seek in (the header last) and renames to FILE.old; on
  // /dev/full or a fifo it fails with no message of its own.
  static constexpr std::pair<fs::file_type, const char*> kNotFiles[] = {
      {fs::file_type::character, "a character device"},
      {fs::file_type::block, "a block device"},
      {fs::file_type::fifo, "a fifo"},
      {fs::file_type::socket, "a socket"}};
  for (const auto& [type, name] : kNotFiles) {
    if (status.type() == type)
      throw Error("-o " + output + " is " + name + ", not a file: perf record writes a file it can seek in")
          .hint("give -o the path of a file");
  }
  fs::path directory = options.output.parent_path().empty() ? fs::path(".") : options.output.parent_path();
  if (!fs::is_directory(directory, error))
    throw Error("-o " + output + ": the directory " + directory.string() + " does not exist")
        .hint("create it first, or give -o a path in an existing directory");
}

int run_recording(const KernelView& kernel, const Options& options) {
  // What can be refused is refused before anything starts: perf moves FILE to FILE.old as it
  // starts, so a typo in COMMAND must not cost the user a recording.
  if (auto status = command_cannot_run(options)) return *status;
  refuse_unusable_output(options);
  OutputLock output_lock(kernel, options.output);
  SignalWatch signals;
  PerfFacts perf = check_perf(options, signals);
  bool privileged = is_privileged();
  mount_tracefs_if_missing(kernel, options, privileged);
  auto problems = preflight_problems(kernel, options, perf, privileged);
  if (!problems.empty()) return report_problems(problems);
  std::string perf_version = major_minor(perf.version_line), kernel_version = major_minor(kernel.release());
  if (perf_version != kernel_version)
    say("note: perf " + perf_version + " is not the kernel's version " + kernel_version +
        "; if recording fails, install the perf matching the kernel (Debian: linux-perf)");

  Mode mode = resolve_mode(kernel, options.mode);
  std::optional<RecorderLock> only_one;
  std::optional<ProbePlan> plan;
  std::optional<ProbeSession> probes;
  RecordingSummary summary;
  // Probes a killed lockrec left go whatever this recording's mode: someone who records only in
  // contention mode would otherwise keep them in kprobe_events until a --cleanup. Only while no
  // other lockrec holds the lock, though: then they are that lockrec's, and in use.
  if (mode == Mode::kprobe || kernel.has_kprobe_events()) {
    only_one.emplace(kernel);
    if (only_one->held()) remove_stale_probes(kernel, options, signals);
  }
  if (mode == Mode::kprobe) {
    only_one->require();
    plan = plan_probes(kernel, options);
    std::cerr << format_skipped_table(*plan);
    try {
      if (plan->chosen.empty()) throw Error("none of lockrec's probe functions is in this kernel");
      summary.probe_command = probe_add_command(options, *plan);
      probes.emplace(kernel, options, *plan, signals);
      summary.events = plan->events();
      summary.plan = &*plan;
    } catch (const Error& error) {
      if (options.mode == Mode::kprobe) throw;
      say(std::string(error.what()) + "; falling back to contention mode");
      mode = Mode::contention;
      summary.probe_command.clear();
    }
  }
  if (mode == Mode::contention) {
    only_one.reset();  // a contention recording leaves the probe group to any kprobe recording
    say("recording the lock:contention_begin/end tracepoints: only contended acquisitions will be seen" +
        std::string(options.mode == Mode::automatic && !kernel.has_kprobe_events()
                        ? " (this kernel has no kprobe_events)"
                        : ""));
    note_kprobe_only_options(options);
    summary.events = contention_events();
  }
  summary.mode = mode;

  if (auto stop = signals.take_stop_request()) {
    say(std::string("stopped by ") + sigabbrev_np(stop->signal) + " before recording started");
    return 128 + stop->signal;
  }

  keep_side_files_with_old_recording(options.output);
  Recording recording(options, summary.events, signals);
  summary.record_command = recording.argv();
  Outcome outcome = recording.run(name_of(mode));
  if (probes) probes->remove();

  if (!perf_ended_well(outcome)) {
    std::string what = outcome.perf_status ? describe_wait_status(*outcome.perf_status) : "did not run";
    std::string when = outcome.perf_stopped_by_us ? " while finishing the file"
                       : outcome.command_status   ? " while COMMAND ran"
                                                  : " before COMMAND started";
    throw Error("perf record " + what + when)
        .hint("its messages are above; the recording " + options.output.string() + " is incomplete");
  }
  // perf stopped before lockrec asked it to, and exited 0: it decided the recording was over (at
  // --max-size, perf says "perf size limit reached"). COMMAND's status, or a 130 as if interrupted,
  // would hide that the recording ended early.
  bool perf_ended_by_itself = !outcome.perf_stopped_by_us && !outcome.stop_signal;
  std::string what_to_do = options.max_size.empty()
                               ? "perf's messages above say why"
                               : "perf stops at --max-size " + options.max_size + ": give a larger one";
  if (options.command.empty()) {
    // -a or -p PID alone: a stop signal is how such a recording is meant to end; with -p, so is
    // the process ending (perf record stops by itself then).
    write_side_files(kernel, options, summary);
    if (perf_ended_by_itself && !options.pid) {
      say("perf record ended by itself (" + describe_wait_status(*outcome.perf_status) + "); " + what_to_do);
      return kExitLockrecFailed;
    }
    if (perf_ended_by_itself) say("process " + std::to_string(*options.pid) + " ended; the recording is complete");
    return 0;
  }
  if (perf_ended_by_itself) {
    if (outcome.command_status) {
      summary.command_wait_status = *outcome.command_status;
      write_side_files(kernel, options, summary);
    }
    std::string what = "perf record ended by itself (" + describe_wait_status(*outcome.perf_status) + ") " +
                       (outcome.command_status ? "while COMMAND ran, so lockrec stopped COMMAND"
                                               : "before COMMAND started, so COMMAND was not run");
    say(what + "; " + what_to_do);
    return kExitLockrecFailed;
  }
  if (outcome.command_exec_errno != 0) {
    say("cannot run " + options.command[0] + ": " + std::strerror(outcome.command_exec_errno));
    return outcome.command_exec_errno == ENOENT ? kExitCommandNotFound : kExitCommandNotExecutable;
  }
  if (!outcome.command_status) {
    // A stop signal came before COMMAND started; perf wrote an (empty) recording.
    return 128 + outcome.stop_signal.value_or(SIGINT);
  }
  summary.command_wait_status = *outcome.command_status;
  write_side_files(kernel, options, summary);
  if (*outcome.command_status != 0)
    say(shell_quote(options.command) + " " + describe_wait_status(*outcome.command_status));
  return shell_exit_code(*outcome.command_status);
}

}  // namespace

int run(const Options& options) {
  KernelView kernel(options.system_root);
  try {
    if (options.cleanup) return run_cleanup(kernel, options);
    if (options.dry_run) return run_dry(kernel, options);
    return run_recording(kernel, options);
  } catch (const Error& error) {
    std::cerr << "lockrec: " << error.what() << std::endl;
    return kExitLockrecFailed;
  }
}

}  // namespace lockscope::recorder
