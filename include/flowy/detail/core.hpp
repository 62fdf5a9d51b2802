#pragma once
// The untyped core the typed templates hand their work to. Everything here is
// internal: names may change without notice.

#include <flowy/error.hpp>
#include <flowy/options.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

namespace flowy::detail {

class Execution;
class TaskArgs;
struct Config;

/// A short readable form of an encoded value, for traces and pictures.
using Describe = std::string (*)(std::string_view bytes);

/// Readable name of a type (demangled).
std::string type_name(const std::type_info& t);

/// Why a result failed, shared by every result the failure reached.
struct ErrorInfo {
    enum class Kind : std::uint8_t { exception, crashed, timed_out };
    Kind kind = Kind::exception;
    std::string message;
    std::string type;    ///< original exception type, empty for crashes
    std::string task;    ///< id of the task where the failure happened
    std::string detail;  ///< encoded bytes that came with it: a failed command's CommandResult
};

/// The error that the exception being handled now describes (call inside a catch block).
ErrorInfo current_error(std::string task);

/// Throws the TaskError (or subclass) that `e` describes.
[[noreturn]] void throw_error(const ErrorInfo& e);

/// Encoded bytes in 16 bytes: up to 15 kept inline, more in a std::string on the heap
/// (a string moved in is adopted, never copied). Slots and pending tasks hold one each,
/// and most values and arguments are small.
class Bytes {
public:
    Bytes() noexcept { raw_[tag] = 0; }
    Bytes(const Bytes&) = delete;
    Bytes& operator=(const Bytes&) = delete;
    Bytes(Bytes&& o) noexcept {
        std::memcpy(raw_, o.raw_, sizeof raw_);
        o.raw_[tag] = 0;
    }
    Bytes& operator=(Bytes&& o) noexcept {
        if (this != &o) {
            clear();
            std::memcpy(raw_, o.raw_, sizeof raw_);
            o.raw_[tag] = 0;
        }
        return *this;
    }
    ~Bytes() { clear(); }

    Bytes& operator=(std::string&& s) {
        clear();
        if (s.size() <= tag) {
            std::memcpy(raw_, s.data(), s.size());
            raw_[tag] = static_cast<unsigned char>(s.size());
        } else {
            std::string* h = new std::string(std::move(s));
            std::memcpy(raw_, &h, sizeof h);
            raw_[tag] = on_heap;
        }
        return *this;
    }
    std::string_view view() const noexcept {
        if (raw_[tag] == on_heap) return *heap();
        return {reinterpret_cast<const char*>(raw_), raw_[tag]};
    }
    operator std::string_view() const noexcept { return view(); }  // NOLINT: reads as bytes
    std::size_t size() const noexcept { return raw_[tag] == on_heap ? heap()->size() : raw_[tag]; }
    bool empty() const noexcept { return size() == 0; }
    /// Moves the bytes out, leaving this empty.
    std::string take() {
        std::string out;
        if (raw_[tag] == on_heap) {
            std::string* h = heap();
            out = std::move(*h);
            delete h;
        } else {
            out.assign(reinterpret_cast<const char*>(raw_), raw_[tag]);
        }
        raw_[tag] = 0;
        return out;
    }
    void clear() noexcept {
        if (raw_[tag] == on_heap) delete heap();
        raw_[tag] = 0;
    }

private:
    static constexpr std::size_t tag = 15;          // raw_[15]: the inline size, or on_heap
    static constexpr unsigned char on_heap = 0xff;  // raw_[0..7]: a std::string*
    std::string* heap() const noexcept {
        std::string* h;
        std::memcpy(&h, raw_, sizeof h);
        return h;
    }
    alignas(8) unsigned char raw_[16];
};

/// "No task": the task of a slot that no task of a run produces (a plain value), and
/// the parent task of the root workflow.
inline constexpr std::uint32_t no_task = UINT32_MAX;

/// A decoded value, owned by its slot.
struct Value {
    virtual ~Value() = default;
};
template <class T>
struct ValueOf final : Value {
    explicit ValueOf(T&& x) : v(std::move(x)) {}
    T v;
};

/// Why a slot failed, kept where a finished slot keeps its decoded value.
struct Failure final : Value {
    explicit Failure(std::shared_ptr<const ErrorInfo> e) : info(std::move(e)) {}
    std::shared_ptr<const ErrorInfo> info;
};

/// The state behind a Result: a value (as bytes, decoded on first read), an error, or
/// pending. Counted by the SlotPtrs to it (56 bytes: one per task, so kept small).
class Slot {
public:
    enum class State : std::uint8_t { pending, finished, failed };

    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    std::atomic<std::uint32_t> refs{0};  ///< SlotPtrs to it
    std::uint32_t task = no_task;        ///< index of the producing task in `owner`
    State state = State::pending;
    bool observed = false;         ///< read by the body or consumed by a task
    bool restarting = false;       ///< the result of restart(...): a RestartSlot
    std::uint64_t finish_seq = 0;  ///< order of completion, 0 while pending
    Execution* owner = nullptr;    ///< the execution that resolves this slot
    Bytes bytes;                   ///< encoded value (engine results)
    std::unique_ptr<Value> value;  ///< finished: the decoded value (once read); failed: a Failure

    /// Marks it failed with `e`.
    void fail(std::shared_ptr<const ErrorInfo> e) {
        state = State::failed;
        value = std::make_unique<Failure>(std::move(e));
    }
    /// Why it failed; null unless it failed.
    const std::shared_ptr<const ErrorInfo>& error() const {
        static const std::shared_ptr<const ErrorInfo> none;
        return state == State::failed ? static_cast<const Failure&>(*value).info : none;
    }
};

/// What restart(...) returns; rare, so its request is not a field of every Slot.
struct RestartSlot : Slot {
    explicit RestartSlot(std::shared_ptr<const struct RestartRequest> r) : request(std::move(r)) { restarting = true; }
    std::shared_ptr<const RestartRequest> request;
};
/// The request of a slot that is `restarting`.
inline const std::shared_ptr<const RestartRequest>& restart_of(const Slot& s) {
    return static_cast<const RestartSlot&>(s).request;
}

/// A counted reference to a Slot (the count lives in the slot: 8 bytes, one allocation).
class SlotPtr {
public:
    SlotPtr() noexcept = default;
    SlotPtr(std::nullptr_t) noexcept {}  // NOLINT: like a null pointer
    /// Takes a reference to `s`, a slot made with new (or a RestartSlot).
    explicit SlotPtr(Slot* s) noexcept : p_(s) {
        if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    SlotPtr(const SlotPtr& o) noexcept : SlotPtr(o.p_) {}
    SlotPtr(SlotPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    SlotPtr& operator=(SlotPtr o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~SlotPtr() {
        if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            if (p_->restarting)
                delete static_cast<RestartSlot*>(p_);
            else
                delete p_;
        }
    }
    Slot* get() const noexcept { return p_; }
    Slot& operator*() const noexcept { return *p_; }
    Slot* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    friend bool operator==(const SlotPtr& a, const SlotPtr& b) noexcept { return a.p_ == b.p_; }

private:
    Slot* p_ = nullptr;
};

/// A new pending slot.
inline SlotPtr make_slot() {
    return SlotPtr(new Slot());
}

/// Finished-slot sequence numbers for results made outside an engine (direct mode).
std::uint64_t next_direct_seq();

/// Suspends the workflow body until `s` is no longer pending.
void await(Slot& s);

/// Tells the engine the body read `s` (for the trace's control dependencies).
void note_read(Slot& s);

/// A slot that is already finished with `value` (ownership taken).
template <class T>
SlotPtr finished_slot(T&& value) {
    SlotPtr s = make_slot();
    using V = std::decay_t<T>;
    s->value = std::make_unique<ValueOf<V>>(V(std::forward<T>(value)));
    s->state = Slot::State::finished;
    s->finish_seq = next_direct_seq();
    return s;
}
SlotPtr finished_void_slot();
SlotPtr failed_slot(std::shared_ptr<const ErrorInfo> e);

/// The error of the failed slot among `inputs` that failed first, or null.
const Slot* first_failed(const std::vector<const Slot*>& inputs);

/// Whether `a` counts as finished before `b`: plain values (finished before the run)
/// first, then in the order the engine saw them finish.
bool finished_before(const Slot& a, const Slot& b);

/// Results handed out in the order they finish: the ones already finished first
/// (earliest first), then each as it finishes. Taking from it suspends the body
/// until one has finished. Serves first(), finish_order() and parallel_reduce().
class FinishQueue {
public:
    FinishQueue();
    ~FinishQueue();
    FinishQueue(const FinishQueue&) = delete;
    FinishQueue& operator=(const FinishQueue&) = delete;

    void add(const SlotPtr& s);
    /// The earliest finished result not taken yet; suspends until there is one.
    SlotPtr take();
    /// How many were added and not taken yet.
    std::size_t size() const { return size_; }

    // Used by the engine.
    void arrived(const SlotPtr& s);
    /// Whether take() can return without waiting: a result is in, and (on resume) no
    /// result still pending finished before it in the recorded run.
    bool can_take();
    void detach() { exec_ = nullptr; }

private:
    Execution* exec_;
    std::vector<SlotPtr> ready_;  // a min-heap by finished_before
    std::size_t size_ = 0;
    // On resume: where pending results came in the recorded finish order (min-heaps;
    // an arrived one leaves through `recorded_arrived_`). Empty in a fresh run.
    std::vector<std::uint64_t> recorded_pending_, recorded_arrived_;
};

/// The signature of an activity, normalised (cv-ref removed from parameters).
struct Signature {
    const std::type_info* type;
    std::string (*name)();
    bool operator==(const Signature& o) const { return *type == *o.type; }
};

template <class S>
struct SignatureOf;
template <class R, class... A>
struct SignatureOf<R(A...)> {
    using type = std::decay_t<R>(std::decay_t<A>...);
    static std::string name() { return type_name(typeid(type)); }
    static constexpr Signature value{&typeid(type), &name};
};

/// A dependency a workflow declares (an Activity or Workflow member with a name).
struct Dependency {
    std::string name;
    Signature signature;
    bool workflow = false;   ///< a child workflow (Workflow<>), not an activity
    mutable int index = -1;  ///< set when the run binds it to its configuration
};

/// What restart(args...) asks for: the arguments of the next incarnation.
struct RestartRequest {
    Signature values;             ///< void(argument value types...)
    std::vector<SlotPtr> inputs;  ///< the results among the arguments
    std::shared_ptr<const TaskArgs> args;
};

struct WorkflowType;
/// Why restart() arguments `r` do not fit the parameters of `type`; empty if they do.
std::string restart_mismatch(const RestartRequest& r, const WorkflowType& type);

/// One running instance of a workflow class: owns the object and calls its body.
class Instance {
public:
    virtual ~Instance() = default;
    /// Calls the body with arguments encoded as its parameter types; returns its result's slot.
    virtual SlotPtr invoke(std::string_view args) = 0;
};

/// A workflow class, type-erased: how to make an instance and what it takes and gives.
struct WorkflowType {
    std::string name;      ///< the class name, demangled
    Signature signature;   ///< R(Params...) with R the value type of its results
    Signature parameters;  ///< void(Params...)
    std::unique_ptr<Instance> (*make)();
    /// Appends the encoded value of a finished result of this workflow.
    void (*encode_result)(Slot& result, std::string& out);
    Describe describe;
};

/// A child workflow bound with conf_workflow: its class and its own configuration.
struct ChildWorkflow {
    const WorkflowType* type;
    std::shared_ptr<const Config> config;
};

/// Records `d` in the workflow under construction (no-op outside LocalWorkflow::run).
void declare(const Dependency& d);

class ResultOut;  // serialize.hpp

/// Runs one task: decodes the arguments from `args` (reading no further than them),
/// calls the function, writes the encoded result to `out`.
using Invoker = std::function<void(std::streambuf& args, ResultOut& out)>;

/// What conf_activity (or conf_workflow) bound to a name.
struct Binding {
    std::string name;
    Signature signature;
    Invoker invoke;  ///< empty for a child workflow
    ActivityOptions options;
    std::shared_ptr<const ChildWorkflow> child;  ///< set for a child workflow
    Describe describe = nullptr;                 ///< the short form of its result
    Describe describe_args = nullptr;            ///< the short form of its encoded arguments
};

/// The untyped configuration of a LocalWorkflow.
struct Config {
    static constexpr int max_retries = 65535;
    static constexpr std::size_t max_bindings = 65535;
    std::vector<Binding> bindings;
    std::vector<std::string> errors;  ///< problems found while configuring, reported by run()
    Executor executor = Executor::processes;
    int workers = 0;  ///< 0: the number of cores
    bool workers_set = false;
    std::function<void(std::string_view)> log;      ///< warnings; null: standard error
    std::string trace_path;                         ///< record the run here (or $FLOWY_TRACE)
    int progress = -1;                              ///< live status line: -1 if stderr is a terminal
    std::chrono::nanoseconds execution_timeout{0};  ///< the whole execution's (0: none)
    std::size_t max_in_flight = 0;                  ///< tasks handed out at once (0: no cap)

    bool bind(std::string name, Signature sig, Invoker inv, ActivityOptions opts, Describe describe = nullptr,
              Describe describe_args = nullptr);
    void bind_workflow(std::string name, std::shared_ptr<const ChildWorkflow> child);
    void set_workers(int n);
};

/// Collects the dependencies declared while a workflow object is constructed.
class DeclarationScope {
public:
    DeclarationScope();
    ~DeclarationScope();
    DeclarationScope(const DeclarationScope&) = delete;
    DeclarationScope& operator=(const DeclarationScope&) = delete;
    std::vector<const Dependency*> declared;
};

/// Encodes the arguments of a task whose inputs were not finished when it was called.
class TaskArgs {
public:
    virtual ~TaskArgs() = default;
    virtual void encode(std::string& out) const = 0;
};

/// One activity call being scheduled on the current execution.
class Call {
public:
    explicit Call(const Dependency& d);
    /// Adds an input; returns false if it is not finished successfully.
    bool input(const SlotPtr& s);
    /// Makes room for `n` more inputs (a vector of results).
    void reserve(std::size_t n) { inputs_.reserve(inputs_.size() + n); }
    /// Adds a result the task waits for (and is skipped if it failed) without taking its value.
    void after(const SlotPtr& s);
    /// The step's display name (pictures, reports, messages); empty: none.
    void name(std::string n) { name_ = std::move(n); }
    bool named() const { return !name_.empty(); }
    /// True if every input so far finished successfully (the arguments can be encoded now).
    bool inputs_ready() const { return ready_; }
    std::string& bytes() { return bytes_; }
    /// Hands the task to the execution; returns its result.
    SlotPtr submit(std::unique_ptr<TaskArgs> deferred);

private:
    const Dependency& dep_;
    Execution* exec_;
    std::vector<Slot*> inputs_;  // kept alive by the call's arguments
    std::vector<Slot*> after_;   // kept alive by the step's options
    std::string name_;
    std::string bytes_;
    bool ready_ = true;
};

/// What `activity.named(...)` and `activity.after(...)` add to one call.
struct StepOptions {
    std::string name;
    std::vector<SlotPtr> after;
};

/// Checks the configuration of `type` (and of its children, recursively) against the
/// dependencies each declares, then runs it on the local engine with `args` (encoded
/// as its parameters). Returns the finished slot of the result; throws TaskError or
/// ConfigError.
SlotPtr run_local(const Config& config, const WorkflowType& type, std::string args);

/// Like run_local, continuing the run recorded in the trace at `path`.
SlotPtr resume_local(const Config& config, const WorkflowType& type, const std::string& path);

}  // namespace flowy::detail
