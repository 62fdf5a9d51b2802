#pragma once
// The untyped core the typed templates hand their work to. Everything here is
// internal: names may change without notice.

#include <flowy/error.hpp>
#include <flowy/options.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace flowy::detail {

class Execution;

/// Readable name of a type (demangled).
std::string type_name(const std::type_info& t);

/// Why a result failed, shared by every result the failure reached.
struct ErrorInfo {
    enum class Kind : std::uint8_t { exception, crashed, timed_out };
    Kind kind = Kind::exception;
    std::string message;
    std::string type;  ///< original exception type, empty for crashes
    std::string task;  ///< id of the task where the failure happened
};

/// The error that the exception being handled now describes (call inside a catch block).
ErrorInfo current_error(std::string task);

/// Throws the TaskError (or subclass) that `e` describes.
[[noreturn]] void throw_error(const ErrorInfo& e);

/// The state behind a Result: a value (as bytes, decoded on first read), an error, or pending.
class Slot {
public:
    enum class State : std::uint8_t { pending, finished, failed };

    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { reset_value(); }

    State state = State::pending;
    bool observed = false;             ///< read by the body or consumed by a task
    std::uint32_t task = UINT32_MAX;   ///< index of the producing task in `owner`
    std::uint64_t finish_seq = 0;      ///< order of completion, 0 while pending
    Execution* owner = nullptr;        ///< the execution that resolves this slot
    std::string bytes;                 ///< encoded value (engine results)
    std::shared_ptr<const ErrorInfo> error;

    void* value = nullptr;             ///< decoded value, owned
    void (*destroy)(void*) = nullptr;
    void reset_value() {
        if (destroy) destroy(value);
        value = nullptr;
        destroy = nullptr;
    }
};

using SlotPtr = std::shared_ptr<Slot>;

/// Finished-slot sequence numbers for results made outside an engine (direct mode).
std::uint64_t next_direct_seq();

/// Suspends the workflow body until `s` is no longer pending.
void await(Slot& s);

/// A slot that is already finished with `value` (ownership taken).
template <class T>
SlotPtr finished_slot(T&& value) {
    auto s = std::make_shared<Slot>();
    using V = std::decay_t<T>;
    s->value = new V(std::forward<T>(value));
    s->destroy = [](void* p) { delete static_cast<V*>(p); };
    s->state = Slot::State::finished;
    s->finish_seq = next_direct_seq();
    return s;
}
SlotPtr finished_void_slot();
SlotPtr failed_slot(std::shared_ptr<const ErrorInfo> e);

/// The error of the failed slot among `inputs` that failed first, or null.
const Slot* first_failed(const std::vector<const Slot*>& inputs);

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

/// A dependency a workflow declares (an Activity member with a name).
struct Dependency {
    std::string name;
    Signature signature;
    mutable int index = -1;  ///< set when the run binds it to its configuration
};

/// Records `d` in the workflow under construction (no-op outside LocalWorkflow::run).
void declare(const Dependency& d);

/// Runs one task: decodes the arguments from `args`, calls the function, appends the encoded result to `out`.
using Invoker = std::function<void(std::string_view args, std::string& out)>;

/// What conf_activity bound to a name.
struct Binding {
    std::string name;
    Signature signature;
    Invoker invoke;
    ActivityOptions options;
};

/// The untyped configuration of a LocalWorkflow.
struct Config {
    std::vector<Binding> bindings;
    std::vector<std::string> errors;  ///< problems found while configuring, reported by run()
    Executor executor = Executor::processes;
    int workers = 0;                  ///< 0: the number of cores
    bool workers_set = false;
    std::function<void(std::string_view)> log;  ///< warnings; null: standard error

    void bind(std::string name, Signature sig, Invoker inv, ActivityOptions opts);
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
    /// True if every input so far finished successfully (the arguments can be encoded now).
    bool inputs_ready() const { return ready_; }
    std::string& bytes() { return bytes_; }
    /// Hands the task to the execution; returns its result.
    SlotPtr submit(std::unique_ptr<TaskArgs> deferred);

private:
    const Dependency& dep_;
    Execution* exec_;
    std::vector<SlotPtr> inputs_;
    std::string bytes_;
    bool ready_ = true;
};

/// The body of one run: calls the workflow and returns the slot of its result.
using Body = std::function<SlotPtr()>;

/// Constructs the workflow (collecting its declared dependencies), checks the
/// configuration against them, then runs `body` on the local engine. Returns the
/// finished slot of the result; throws TaskError or ConfigError.
SlotPtr run_local(const Config& config, const std::string& workflow, const std::function<void()>& construct,
                  const Body& body);

}  // namespace flowy::detail
