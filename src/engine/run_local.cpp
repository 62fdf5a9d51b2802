// The local engine's entry points: check a workflow's configuration against what it
// declares and lay out its plan (recursively for child workflows), choose the
// executor and the recorders, and run (or resume from a trace).

#include "engine/execution.hpp"
#include "engine/progress.hpp"
#include "trace/journal.hpp"
#include "trace/trace_recorder.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace flowy::detail {

namespace {
constexpr int max_nesting = 16;

std::string config_problems(const Config& c) {
    std::string m = c.errors.front();
    for (std::size_t i = 1; i < c.errors.size(); ++i) m += "; " + c.errors[i];
    return m;
}

const char* executor_name(Executor e) {
    switch (e) {
        case Executor::processes:
            return "processes";
        case Executor::threads:
            return "threads";
        case Executor::synchronous:
            return "synchronous";
    }
    return "?";
}
}  // namespace

namespace {
/// Edit distance, letters compared without case (a typo's distance to the name meant).
std::size_t distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

/// The closest of `names` to `name` if one is close enough to be a typo of it, or "".
std::string closest(const std::string& name, const std::vector<std::string>& names) {
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
    for (const std::string& n : names)
        if (std::size_t d = distance(name, n); d < best_d && n != name) {
            best = n;
            best_d = d;
        }
    return best;
}
}  // namespace

std::uint32_t bind(const Dependency& d, const Config& config, const std::string& where) {
    const auto& b = config.bindings;
    std::size_t i = 0;
    if (d.index >= 0 && static_cast<std::size_t>(d.index) < b.size() && b[std::size_t(d.index)].name == d.name) {
        i = static_cast<std::size_t>(d.index);
    } else {
        while (i < b.size() && b[i].name != d.name) ++i;
        if (i == b.size()) {
            std::vector<std::string> configured;
            for (const Binding& x : b) configured.push_back(x.name);
            std::string near = closest(d.name, configured);
            throw ConfigError("flowy: dependency '" + d.name + "' (" + d.signature.name() + ") of " + where +
                              " is not configured: call " + (d.workflow ? "conf_workflow" : "conf_activity") + "(\"" +
                              d.name + "\", ...) with " + (d.workflow ? "a workflow" : "a function") +
                              " of that signature" +
                              (near.empty() ? std::string() : " ('" + near + "' is configured: a typo?)"));
        }
    }
    if (!(b[i].signature == d.signature))
        throw ConfigError("flowy: dependency '" + d.name + "' of " + where + " is declared as " + d.signature.name() +
                          " but configured with " + b[i].signature.name());
    if (d.workflow != bool(b[i].child))
        throw ConfigError("flowy: dependency '" + d.name + "' of " + where + " is declared as " +
                          (d.workflow ? "a child workflow" : "an activity") + " but configured with " +
                          (b[i].child ? "conf_workflow" : "conf_activity"));
    d.index = static_cast<int>(i);
    return static_cast<std::uint32_t>(i);
}

namespace {

/// Checks what `type` declares against `config`, recursively for its child
/// workflows, and lays their activities out in `registry`. The root's instance
/// (constructed once, here) is returned through `root_instance`.
std::unique_ptr<Plan> make_plan(const WorkflowType& type, const Config& config, Registry& registry, int depth,
                                const std::string& where, std::unique_ptr<Instance>* root_instance) {
    if (depth > max_nesting)
        throw ConfigError("flowy: child workflows nest deeper than " + std::to_string(max_nesting) + " levels at " +
                          where + " (does a workflow contain itself?)");
    if (!config.errors.empty())
        throw ConfigError("flowy: bad configuration of " + where + ": " + config_problems(config));

    std::vector<const Dependency*> declared;
    std::unique_ptr<Instance> instance;
    {
        DeclarationScope scope;
        try {
            instance = type.make();
        } catch (...) {
            rethrow_as_run_error();
        }
        declared = std::move(scope.declared);
    }
    std::unordered_map<std::string, const Dependency*> seen;
    for (const Dependency* d : declared) {
        auto [it, fresh] = seen.emplace(d->name, d);
        if (!fresh && !(it->second->signature == d->signature && it->second->workflow == d->workflow))
            throw ConfigError("flowy: " + where + " declares dependency '" + d->name + "' twice, as " +
                              it->second->signature.name() + " and as " + d->signature.name());
        bind(*d, config, where);
    }
    // What it configures and does not declare is a mistake, usually a typo.
    for (const Binding& b : config.bindings)
        if (!seen.count(b.name)) {
            std::vector<std::string> names;
            for (const auto& [n, d] : seen) names.push_back(n);
            std::sort(names.begin(), names.end());
            std::string list;
            for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
            std::string near = closest(b.name, names);
            throw ConfigError("flowy: " + where + " has no dependency '" + b.name + "', but it was configured with " +
                              (b.child ? "conf_workflow" : "conf_activity") +
                              (near.empty() ? std::string() : " (did you mean '" + near + "'?)") +
                              "; it declares: " + (list.empty() ? "nothing" : list));
        }
    if (root_instance) *root_instance = std::move(instance);

    auto plan = std::make_unique<Plan>();
    plan->type = &type;
    plan->config = &config;
    plan->base = static_cast<std::uint32_t>(registry.size());
    for (const Binding& b : config.bindings) registry.push_back(b.child ? nullptr : &b.invoke);
    plan->children.resize(config.bindings.size());
    for (std::size_t i = 0; i < config.bindings.size(); ++i) {
        const Binding& b = config.bindings[i];
        if (b.child)
            plan->children[i] = make_plan(*b.child->type, *b.child->config, registry, depth + 1,
                                          "child workflow '" + b.name + "' (" + b.child->type->name + ")", nullptr);
    }
    return plan;
}

/// This process's threads and children (of all its threads), read from /proc/self/task
/// in one pass.
struct Tasks {
    int threads = 0;
    std::vector<pid_t> children;  // sorted
};
Tasks tasks_of_this_process() {
    Tasks out;
    DIR* d = opendir("/proc/self/task");
    if (!d) return out;
    while (const dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        ++out.threads;
        std::string path = std::string("/proc/self/task/") + e->d_name + "/children";
        FILE* f = std::fopen(path.c_str(), "r");
        if (!f) continue;
        for (long pid; std::fscanf(f, "%ld", &pid) == 1;) out.children.push_back(static_cast<pid_t>(pid));
        std::fclose(f);
    }
    closedir(d);
    std::sort(out.children.begin(), out.children.end());
    return out;
}

/// For the length of a run, the process is a child subreaper: a process that an
/// activity started and left behind (daemonised: setsid and a double fork) becomes its
/// child rather than init's, and is killed and reaped when the run ends. Children the
/// program had before the run are left alone.
class Subreaper {
public:
    /// `before`: the children the program has now.
    explicit Subreaper(std::vector<pid_t> before) : before_(std::move(before)) {
        if (prctl(PR_GET_CHILD_SUBREAPER, &previous_) != 0) previous_ = 0;
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    ~Subreaper() {
        for (int round = 0; round < 100; ++round) {  // each kill may hand us the next generation
            std::vector<pid_t> left;
            for (pid_t p : tasks_of_this_process().children)
                if (!std::binary_search(before_.begin(), before_.end(), p)) left.push_back(p);
            if (left.empty()) break;
            for (pid_t p : left) ::kill(p, SIGKILL);
            for (pid_t p : left)
                while (::waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
                }
        }
        prctl(PR_SET_CHILD_SUBREAPER, previous_);
    }
    Subreaper(const Subreaper&) = delete;
    Subreaper& operator=(const Subreaper&) = delete;

private:
    int previous_ = 0;
    std::vector<pid_t> before_;
};

std::unique_ptr<TaskExecutor> make_executor(Executor e, const Registry& registry, int workers) {
    switch (e) {
        case Executor::synchronous:
            return make_synchronous_executor(registry);
        case Executor::threads:
            return make_thread_executor(registry, workers);
        case Executor::processes:
            break;
    }
    return make_process_executor(registry, workers);
}

}  // namespace

std::unique_ptr<Plan> plan_of(const WorkflowType& type, const Config& config, Registry& registry,
                              std::unique_ptr<Instance>* root_instance) {
    return make_plan(type, config, registry, 0, type.name, root_instance);
}

int workers_of(const Config& config) {
    if (config.workers_set && config.workers < 1)
        throw ConfigError("flowy: workers(" + std::to_string(config.workers) + "): a run needs at least one worker");
    return config.workers_set ? config.workers : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void warn_of_threads(const Config& config, int threads) {
    if (threads == 0) threads = tasks_of_this_process().threads;
    if (int others = threads - 1; others > 0)
        log_warning(config.log,
                    "this process has " + std::to_string(others) + " other thread" + (others > 1 ? "s" : "") +
                        ": the processes executor forks its workers, and a lock that another thread holds at that "
                        "moment (yours or a library's) stays held in the worker for ever, which hangs it. Start runs "
                        "before starting threads, run them from a process of their own, or use Executor::threads");
}

std::unique_ptr<Recorder> make_recorders(const Config& config, bool append, std::unique_ptr<Recorder> extra) {
    auto warn = [&config](const std::string& m) { log_warning(config.log, m); };
    std::vector<std::unique_ptr<Recorder>> recorders;
    if (extra) recorders.push_back(std::move(extra));
    std::string path = config.trace_path;
    if (path.empty())
        if (const char* env = std::getenv("FLOWY_TRACE")) path = env;
    if (!path.empty()) {
        // A new trace is a journal, unless its name ends in .jsonl; a resumed one goes on
        // as it was written (JSON Lines: an earlier release's, or `flowy export`'s).
        bool jsonl = append ? trace::encoding_of_file(path) == trace::Encoding::jsonl
                            : path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
        if (jsonl)
            recorders.push_back(std::make_unique<trace::TraceRecorder>(path, append, warn));
        else
            recorders.push_back(std::make_unique<trace::journal::JournalRecorder>(path, append, warn));
    }
    if (config.progress == 1 || (config.progress < 0 && isatty(2)))
        recorders.push_back(std::make_unique<ProgressLine>());
    if (recorders.size() > 1) return std::make_unique<RecorderTee>(std::move(recorders));
    if (recorders.size() == 1) return std::move(recorders.front());
    return nullptr;
}

namespace {

/// Checks the configuration, lays out the registry and runs (continuing `replay` if given).
SlotPtr run_checked(const Config& config, const WorkflowType& type, std::string args, Replay* replay) {
    int workers = workers_of(config);
    Registry registry;
    std::unique_ptr<Instance> first;
    std::unique_ptr<Plan> plan = plan_of(type, config, registry, &first);

    Tasks now = tasks_of_this_process();
    if (config.executor == Executor::processes) warn_of_threads(config, now.threads);
    std::unique_ptr<Recorder> recorder = make_recorders(config, replay != nullptr, nullptr);

    ExecutionParts parts;
    parts.activities = registry.size();
    parts.executor = make_executor(config.executor, registry, workers);
    parts.recorder = recorder.get();
    parts.replay = replay;
    parts.executor_name = executor_name(config.executor);
    parts.workers = workers;
    parts.log = config.log;
    Subreaper subreaper(std::move(now.children));  // outlives the execution: what it left behind goes with it
    Execution ex(*plan, std::move(parts));
    return ex.run(std::move(args), std::move(first));
}
}  // namespace

SlotPtr run_local(const Config& config, const WorkflowType& type, std::string args) {
    return run_checked(config, type, std::move(args), nullptr);
}

SlotPtr resume_local(const Config& config, const WorkflowType& type, const std::string& path) {
    History history = load_history(path);
    // Another workflow, or one whose parameters changed, cannot take the recorded input:
    // say so before anything is appended to the trace.
    if (history.workflow != type.name)
        throw TaskError("flowy: resume: " + path + " records a run of " + history.workflow + ", not of " + type.name +
                            ": resume it with LocalWorkflow<" + history.workflow + ">",
                        "", "flowy::resume");
    if (!history.parameters.empty() && history.parameters != type.parameters.name())
        throw TaskError("flowy: resume: " + path + " records a run of " + type.name + " with parameters " +
                            history.parameters + ", but the workflow now takes " + type.parameters.name(),
                        "", "flowy::resume");
    Replay replay(std::move(history));
    Config traced = config;
    traced.trace_path = path;  // the new events go to the same trace
    return run_checked(traced, type, replay.input(), &replay);
}

}  // namespace flowy::detail
