// The untyped core shared by the typed layer and the engine: errors, slots,
// declarations and configuration.

#include <flowy/command.hpp>
#include <flowy/detail/core.hpp>
#include <flowy/detail/serialize.hpp>
#include <flowy/version.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <typeinfo>

namespace flowy {

const char* version() noexcept {
    return FLOWY_VERSION;
}

TaskError::TaskError(const std::string& message, std::string task, std::string type)
    : std::runtime_error(message),
      where_(std::make_shared<const std::pair<std::string, std::string>>(std::move(task), std::move(type))) {}

const std::string& TaskError::task() const noexcept {
    return where_->first;
}
const std::string& TaskError::type() const noexcept {
    return where_->second;
}

namespace detail {

std::string type_name(const std::type_info& t) {
    int status = 0;
    char* p = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
    std::string out = (status == 0 && p) ? p : t.name();
    std::free(p);
    for (std::size_t at; (at = out.find("(anonymous namespace)::")) != std::string::npos;) out.erase(at, 23);
    return out;
}

void throw_error(const ErrorInfo& e) {
    switch (e.kind) {
        case ErrorInfo::Kind::timed_out:
            throw TaskTimedout(e.message, e.task, e.type);
        case ErrorInfo::Kind::crashed:
            throw WorkerCrashed(e.message, e.task, e.type);
        case ErrorInfo::Kind::exception:
            break;
    }
    throw TaskError(e.message, e.task, e.type);
}

ErrorInfo current_error(std::string task) {
    ErrorInfo e;
    e.task = std::move(task);
    const std::type_info* t = abi::__cxa_current_exception_type();
    e.type = t ? type_name(*t) : std::string("unknown");
    try {
        throw;
    } catch (const CommandFailed& ex) {
        e.message = ex.what();
        if (ex.result()) encode(e.detail, *ex.result());
    } catch (const std::exception& ex) {
        e.message = ex.what();
    } catch (...) {
        e.message = "exception of type " + e.type;
    }
    return e;
}

std::string restart_mismatch(const RestartRequest& r, const WorkflowType& type) {
    if (r.values == type.parameters) return {};
    return "flowy::restart: the arguments " + r.values.name() + " do not match the parameters of " + type.name + ", " +
           type.parameters.name();
}

namespace {
thread_local std::uint64_t direct_seq = 0;
thread_local DeclarationScope* declaring = nullptr;
}  // namespace

std::uint64_t next_direct_seq() {
    return ++direct_seq;
}

SlotPtr finished_void_slot() {
    SlotPtr s = make_slot();
    s->state = Slot::State::finished;
    s->finish_seq = next_direct_seq();
    return s;
}

SlotPtr failed_slot(std::shared_ptr<const ErrorInfo> e) {
    SlotPtr s = make_slot();
    s->fail(std::move(e));
    s->finish_seq = next_direct_seq();
    return s;
}

const Slot* first_failed(const std::vector<const Slot*>& inputs) {
    const Slot* best = nullptr;
    for (const Slot* s : inputs)
        if (s->state == Slot::State::failed && (!best || finished_before(*s, *best))) best = s;
    return best;
}

DeclarationScope::DeclarationScope() {
    declaring = this;
}
DeclarationScope::~DeclarationScope() {
    declaring = nullptr;
}

void declare(const Dependency& d) {
    if (declaring) declaring->declared.push_back(&d);
}

namespace {
bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 200) return false;
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
    if (!letter(n[0])) return false;
    for (char c : n)
        if (!letter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-' && c != ':') return false;
    return true;
}
}  // namespace

bool Config::bind(std::string name, Signature sig, Invoker inv, ActivityOptions opts, Describe describe,
                  Describe describe_args) {
    if (!valid_name(name)) {
        errors.push_back("invalid dependency name '" + name +
                         "': use a letter or '_' followed by letters, digits, '_', '.', ':' or '-' (at most 200)");
        return false;
    }
    for (const Binding& b : bindings)
        if (b.name == name) {
            errors.push_back("dependency '" + name + "' is configured twice (" + b.signature.name() + " and " +
                             sig.name() + ")");
            return false;
        }
    if (opts.timeout && opts.timeout->count() <= 0)
        errors.push_back("dependency '" + name + "': the timeout must be positive");
    if (opts.heartbeat_timeout && opts.heartbeat_timeout->count() <= 0)
        errors.push_back("dependency '" + name + "': the heartbeat timeout must be positive");
    if (opts.schedule_to_start && opts.schedule_to_start->count() <= 0)
        errors.push_back("dependency '" + name + "': schedule_to_start must be positive");
    if (opts.schedule_to_close && opts.schedule_to_close->count() <= 0)
        errors.push_back("dependency '" + name + "': schedule_to_close must be positive");
    if (opts.concurrency < 0) errors.push_back("dependency '" + name + "': concurrency must not be negative");
    if (bindings.size() >= max_bindings) {
        errors.push_back("dependency '" + name + "': a workflow configures at most " + std::to_string(max_bindings) +
                         " dependencies");
        return false;
    }
    if (opts.retries < 0) errors.push_back("dependency '" + name + "': retries must not be negative");
    if (opts.retries > max_retries)
        errors.push_back("dependency '" + name + "': retries must be at most " + std::to_string(max_retries));
    if (opts.retry_delay.count() < 0) errors.push_back("dependency '" + name + "': retry_delay must not be negative");
    bindings.push_back(Binding{std::move(name), sig, std::move(inv), opts, nullptr, describe, describe_args});
    return true;
}

void Config::bind_workflow(std::string name, std::shared_ptr<const ChildWorkflow> child) {
    if (bind(std::move(name), child->type->signature, Invoker(), ActivityOptions{}, child->type->describe))
        bindings.back().child = std::move(child);
}

void Config::set_workers(int n) {
    workers = n;
    workers_set = true;
}

}  // namespace detail
}  // namespace flowy
