// The picture of a trace: a Graphviz graph built with cgraph, laid out and rendered
// in-process with gvc. All Graphviz calls happen on the calling thread (it is not
// thread-safe); DOT text is what tests compare (SVG bytes vary by Graphviz version).

#include <flowy/detail/serialize.hpp>
#include <flowy/trace.hpp>

#include "render/views.hpp"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowy {
namespace {

// The C API takes char*: keep the casts here.
char* c(const std::string& s) {
    return const_cast<char*>(s.c_str());
}
char* c(const char* s) {
    return const_cast<char*>(s);
}

void set(void* obj, const char* key, const std::string& value) {
    agsafeset(obj, c(key), c(value), c(""));
}

/// A label from text a user wrote (names, values, messages): printable, and with its
/// backslashes kept (Graphviz reads `\N`, `\l` and the like as escapes).
void set_label(void* obj, const std::string& text) {
    std::string out;
    for (char ch : detail::views::printable(text)) {
        if (ch == '\\') out += '\\';
        out += ch;
    }
    set(obj, "label", out);
}

// The folding rule's limits (see Builder::group): about 12 nodes of at most ~250 pt side
// by side keep a level under 4,000 pt wide; dot's ranks stay far from what crashes it.
constexpr std::size_t max_row = 12;
constexpr std::size_t chain_fold = 12;
constexpr std::size_t max_depth = 100;

// cgraph's default ID discipline derives IDs from string addresses, and agwrite
// orders subgraphs by ID: the DOT text would vary from run to run. This one numbers
// named objects in creation order (even IDs, as cgraph expects; odd ones are anonymous).
struct SeqIds {
    std::unordered_map<std::string, IDTYPE> ids;
    std::vector<char*> names;  // from cgraph's string pool: agwrite inspects them
    IDTYPE anonymous = 1;
};
void* seq_open(Agraph_t*, Agdisc_t*) {
    return new SeqIds;
}
long seq_map(void* state, int, char* str, IDTYPE* id, int create) {
    auto* s = static_cast<SeqIds*>(state);
    if (!str) {
        *id = s->anonymous;
        s->anonymous += 2;
        return 1;
    }
    auto it = s->ids.find(str);
    if (it != s->ids.end()) {
        *id = it->second;
        return 1;
    }
    if (!create) return 0;
    s->names.push_back(agstrdup(nullptr, str));
    *id = static_cast<IDTYPE>(2 * s->names.size());
    s->ids.emplace(str, *id);
    return 1;
}
long seq_alloc(void*, int, IDTYPE) {
    return 0;
}
void seq_free(void*, int, IDTYPE) {}
char* seq_print(void* state, int, IDTYPE id) {
    auto* s = static_cast<SeqIds*>(state);
    if (id % 2 != 0 || id == 0 || id / 2 > s->names.size()) return nullptr;
    return s->names[id / 2 - 1];
}
void seq_close(void* state) {
    auto* s = static_cast<SeqIds*>(state);
    for (char* n : s->names) agstrfree(nullptr, n);
    delete s;
}
void seq_register(void*, int, void*) {}
Agiddisc_t seq_id_disc = {seq_open, seq_map, seq_alloc, seq_free, seq_print, seq_close, seq_register};
Agdisc_t seq_disc = {&AgMemDisc, &seq_id_disc, &AgIoDisc};

struct Style {
    const char* fill;
    const char* shape;
    const char* style;
    std::string name;  // in the legend
};

Style style_of(TraceTask::State s) {
    const char* name = to_string(s);
    switch (s) {
        case TraceTask::State::finished:
            return {"#d4edda", "box", "rounded,filled", name};
        case TraceTask::State::failed:
            return {"#f8d7da", "box", "rounded,filled,bold", name};
        case TraceTask::State::timed_out:
            return {"#ffe5b4", "box", "rounded,filled,bold", name};
        case TraceTask::State::crashed:
            return {"#f5c6e6", "octagon", "filled,bold", name};
        case TraceTask::State::skipped:
            return {"#eeeeee", "box", "rounded,filled,dashed", std::string(name) + " (input failed)"};
        case TraceTask::State::interrupted:
        case TraceTask::State::running:
            return {"#cfe2ff", "box", "rounded,filled,dashed,bold", name};
        case TraceTask::State::never_finished:
        case TraceTask::State::scheduled:
            break;
    }
    return {"#ffffff", "box", "rounded,dotted", name};
}

std::string ms(std::int64_t us) {
    char buf[32];
    if (us < 1000)
        std::snprintf(buf, sizeof buf, "%lld µs", static_cast<long long>(us));
    else if (us < 10000000)
        std::snprintf(buf, sizeof buf, "%.1f ms", double(us) / 1000.0);
    else
        std::snprintf(buf, sizeof buf, "%.1f s", double(us) / 1e6);
    return buf;
}

std::string clip(std::string s, std::size_t n = 40) {
    for (char& ch : s)
        if (ch == '\n') ch = ' ';
    return detail::clip_short(std::move(s), n);
}

std::string join(const std::set<std::string>& xs) {
    std::string out;
    for (const auto& x : xs) out += (out.empty() ? "" : ", ") + x;
    return out;
}

std::int64_t duration(const TraceTask& t) {
    if (t.run_start() < 0 || t.run_end() < 0) return -1;  // a cached task shows the time it took then: 0
    return std::max<std::int64_t>(0, t.run_end() - t.run_start());
}

/// A node of the picture: one task, or a fold of siblings.
struct Node {
    std::string name;
    std::vector<const TraceTask*> tasks;
    bool chain = false;  ///< the middle of a chain
};

class Builder {
public:
    explicit Builder(const Trace& trace) : trace_(trace) {}

    Agraph_t* build() {
        g_ = agopen(c("flowy"), Agdirected, &seq_disc);
        set(g_, "rankdir", "TB");
        set(g_, "fontname", "Helvetica");
        set(g_, "newrank", "true");
        agattr(g_, AGNODE, c("fontname"), c("Helvetica"));
        agattr(g_, AGNODE, c("fontsize"), c("10"));
        agattr(g_, AGEDGE, c("arrowsize"), c("0.6"));
        group();
        const TraceRun& run = trace_.runs().back();
        std::string title = run.workflow + " on " + run.executor;
        if (run.executor == "postgres") {
            // Its workers are wherever serving processes ran its tasks.
            std::set<std::string> hosts, processes;
            for (const TraceTask& t : trace_.tasks())
                if (!t.host.empty()) {
                    hosts.insert(t.host);
                    processes.insert(t.host + ":" + std::to_string(t.pid));
                }
            title = run.workflow + " on PostgreSQL (" + std::to_string(processes.size()) + " worker process" +
                    (processes.size() == 1 ? "" : "es") + " on " + std::to_string(hosts.size()) + " host" +
                    (hosts.size() == 1 ? "" : "s") + ")";
        } else if (run.executor != "synchronous") {
            title += " (" + std::to_string(run.workers) + " workers)";
        }
        if (trace_.runs().size() > 1) title += ", resumed " + std::to_string(trace_.runs().size() - 1) + "x";
        set(g_, "label", title);
        set(g_, "labelloc", "t");

        Agnode_t* input = agnode(g_, c("input"), 1);
        set(input, "shape", "invhouse");
        set(input, "label", "input");
        set(input, "style", "filled");
        set(input, "fillcolor", "#e3f2fd");
        for (Node& n : nodes_) add_node(n);
        Agnode_t* result = agnode(g_, c("result"), 1);
        set(result, "shape", "house");
        set(result, "style", "filled");
        switch (run.outcome) {
            case TraceRun::Outcome::finished:
                set_label(result, "result\n" + clip(run.short_value));
                set(result, "fillcolor", "#d4edda");
                break;
            case TraceRun::Outcome::failed:
                set_label(result, "failed\n" + clip(run.message));
                set(result, "fillcolor", "#f8d7da");
                break;
            case TraceRun::Outcome::cancelled:
                set(result, "label", "cancelled");
                set(result, "fillcolor", "#eeeeee");
                break;
            case TraceRun::Outcome::running:
                set(result, "label", run.trace_stopped.empty() ? "never finished" : "not traced to its end");
                set(result, "fillcolor", "#ffffff");
                break;
        }
        edges(input, result);
        rows();
        legend();
        return g_;
    }

private:
    /// The folding rule (docs/trace-format.md, "Folding"): a chain of more than
    /// `chain_fold` tasks of one activity shows its first and last task and one node for
    /// the rest; a level of a frame (tasks as far from its input) with more than
    /// `max_row` nodes folds them by activity and state (by state alone if that is still
    /// too many); past `max_depth` levels, levels fold in bands.
    void group() {
        const auto& tasks = trace_.tasks();
        const std::size_t n = tasks.size();
        ids_ = detail::views::index_of(trace_);
        // inputs (arguments, reads and after(...)) and how many tasks consume each task
        std::vector<std::vector<std::size_t>> inputs(n);
        std::vector<std::uint32_t> consumers(n, 0);
        for (std::size_t i = 0; i < n; ++i) {
            auto& in = inputs[i];
            auto add = [&](const std::string& id) {
                std::size_t at = ids_.find(id);
                if (at != detail::TaskIndex::none && at != i) in.push_back(at);
            };
            for (const auto& a : tasks[i].args) add(a);
            for (const auto& r : tasks[i].reads) add(r);
            for (const auto& a : tasks[i].after) add(a);
            std::sort(in.begin(), in.end());
            in.erase(std::unique(in.begin(), in.end()), in.end());
            for (std::size_t j : in) ++consumers[j];
        }
        auto same_kind = [&](std::size_t a, std::size_t b) {
            const TraceTask& x = tasks[a];
            const TraceTask& y = tasks[b];
            return !x.child && !y.child && x.frame == y.frame && x.incarnation == y.incarnation &&
                   x.activity == y.activity && x.state == y.state;
        };
        // chains: B follows A when A is B's only input of its kind and B is A's only consumer
        std::vector<std::size_t> next(n, n), prev(n, n);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t link = n, kin = 0;
            for (std::size_t j : inputs[i])
                if (same_kind(i, j)) {
                    ++kin;
                    link = j;
                }
            if (kin == 1 && consumers[link] == 1) {
                next[link] = i;
                prev[i] = link;
            }
        }
        std::vector<std::string> key(n);
        std::vector<std::size_t> chain_of(n, n);  // the first task of the chain whose middle holds it
        for (std::size_t i = 0; i < n; ++i) {
            if (prev[i] != n) continue;
            std::vector<std::size_t> chain{i};
            while (next[chain.back()] != n) chain.push_back(next[chain.back()]);
            if (chain.size() <= chain_fold) continue;
            for (std::size_t k = 1; k + 1 < chain.size(); ++k) {
                key[chain[k]] = "chain\x1f" + tasks[i].id;
                chain_of[chain[k]] = i;
            }
        }
        // levels (tasks as far from the input, a chain's middle counting as one): an input
        // is scheduled before the tasks that take it, so one pass in trace order does
        // A read holds back every later call of its frame, not only the next one (which is
        // the one the trace names): a frame's calls are no earlier than its last read.
        std::vector<std::size_t> level(n, 0), depth(n, 0);
        struct Held {
            std::size_t level = 0, depth = 0, by = SIZE_MAX;
        };
        std::unordered_map<std::string, Held> held;  // by frame and incarnation
        held_by_.assign(n, SIZE_MAX);
        std::size_t deepest = 0, deepest_task = 0;
        for (std::size_t i = 0; i < n; ++i) {
            Held& h = held[frame_key(tasks[i])];
            for (const auto& r : tasks[i].reads)
                if (std::size_t j = ids_.find(r); j != detail::TaskIndex::none && j < i) {
                    if (level[j] + 1 >= h.level) h.by = j;
                    h.level = std::max(h.level, level[j] + 1);
                    h.depth = std::max(h.depth, depth[j] + 1);
                }
            level[i] = h.level;
            depth[i] = h.depth;
            held_by_[i] = h.by;
            last_read_[frame_key(tasks[i])] = h.by;
            for (std::size_t j : inputs[i]) {
                if (j > i) continue;
                bool inside = chain_of[i] != n && chain_of[i] == chain_of[j];
                level[i] = std::max(level[i], level[j] + (inside ? 0 : 1));
                depth[i] = std::max(depth[i], depth[j] + 1);
            }
            deepest = std::max(deepest, level[i]);
            deepest_task = std::max(deepest_task, depth[i]);
        }
        auto state_of = [&](std::size_t i) { return std::to_string(static_cast<int>(tasks[i].state)); };
        if (deepest > max_depth) {
            // still too deep for dot: fold levels in bands, by activity and state
            std::size_t band = (deepest_task + max_depth - 1) / max_depth;
            for (std::size_t i = 0; i < n; ++i)
                key[i] = tasks[i].child ? std::string()
                                        : frame_key(tasks[i]) + "\x1f" + std::to_string(depth[i] / band) + "\x1f" +
                                              tasks[i].activity + "\x1f" + state_of(i);
        } else {
            std::map<std::pair<std::string, std::size_t>, std::vector<std::size_t>> levels;
            for (std::size_t i = 0; i < n; ++i)
                if (chain_of[i] == n) levels[{frame_key(tasks[i]), level[i]}].push_back(i);
            for (auto& [where, members] : levels) {
                if (members.size() <= max_row) continue;
                std::string at = where.first + "\x1f" + std::to_string(where.second) + "\x1f";
                std::set<std::string> kinds;
                for (std::size_t i : members)
                    if (!tasks[i].child) kinds.insert(tasks[i].activity + "\x1f" + state_of(i));
                bool by_state = kinds.size() > max_row;
                for (std::size_t i : members) {
                    if (tasks[i].child) continue;  // a child call keeps its node: its frame hangs off it
                    key[i] = by_state ? at + "\x1f" + state_of(i) : at + tasks[i].activity + "\x1f" + state_of(i);
                }
            }
        }
        std::map<std::string, std::size_t> groups;
        node_of_.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            const TraceTask& t = tasks[i];
            std::size_t at;
            if (key[i].empty()) {
                at = nodes_.size();
                nodes_.push_back(Node{t.id, {}});
            } else {
                auto [it, fresh] = groups.emplace(key[i], nodes_.size());
                if (fresh) nodes_.push_back(Node{t.id, {}, key[i].rfind("chain", 0) == 0});
                at = it->second;
            }
            nodes_[at].tasks.push_back(&t);
            node_of_[i] = at;
        }
        for (const TraceRestart& r : trace_.restarts()) restarted_frames_.insert(r.frame);
    }

    static std::string frame_key(const TraceTask& t) { return t.frame + "#" + std::to_string(t.incarnation); }

    /// The graph (a cluster for a child frame or an incarnation) a task belongs in.
    Agraph_t* graph_for(const TraceTask& t) {
        Agraph_t* parent = g_;
        std::string path;
        // each "/"-separated level of the frame is a child workflow: nested clusters
        std::size_t start = 0;
        while (start < t.frame.size()) {
            std::size_t slash = t.frame.find('/', start);
            if (slash == std::string::npos) break;
            path = t.frame.substr(0, slash + 1);
            parent = cluster(parent, "cluster_" + path, "child workflow " + path.substr(0, path.size() - 1), "#fafafa");
            start = slash + 1;
        }
        if (restarted_frames_.count(t.frame) || t.incarnation > 0) {
            std::string name = "cluster_" + t.frame + "#" + std::to_string(t.incarnation);
            parent = cluster(parent, name, t.incarnation ? "restart " + std::to_string(t.incarnation) : "first run",
                             "#ffffff");
        }
        return parent;
    }

    Agraph_t* cluster(Agraph_t* parent, const std::string& name, const std::string& label, const char* fill) {
        Agraph_t* sg = agsubg(parent, c(name), 0);
        if (sg) return sg;
        sg = agsubg(parent, c(name), 1);
        set(sg, "label", label);
        set(sg, "style", "rounded,filled");
        set(sg, "fillcolor", fill);
        set(sg, "color", "#9e9e9e");
        return sg;
    }

    void add_node(Node& n) {
        const TraceTask& t = *n.tasks.front();
        Agraph_t* where = graph_for(t);
        Agnode_t* a = agnode(where, c(n.name), 1);
        Style st = style_of(t.state);
        set(a, "shape", t.child ? "component" : st.shape);
        set(a, "style", st.style);
        set(a, "fillcolor", st.fill);
        std::string label;
        if (n.tasks.size() == 1) {
            label = t.activity + " #" + std::to_string(t.call);
            if (!t.name.empty()) label = clip(t.name) + "\n" + label;
            std::int64_t d = duration(t);
            if (d >= 0) label += "\n" + ms(d);
            if (!t.host.empty()) label += "\non " + t.host + " pid " + std::to_string(t.pid);
            if (t.cached) label += "\n(from the trace)";
            if (t.attempts > 1) label += "\n" + std::to_string(t.attempts) + " attempts";
            switch (t.state) {
                case TraceTask::State::finished:
                    label += "\n= " + clip(t.short_value);
                    break;
                case TraceTask::State::skipped:
                    label += "\nskipped: " + clip(t.because) + " failed";
                    break;
                case TraceTask::State::never_finished:
                case TraceTask::State::interrupted:
                    label += std::string("\n") + to_string(t.state);
                    break;
                default:  // the title says the step's name: the message goes on with what happened
                    if (std::size_t at = t.message.find("timed out");
                        t.state == TraceTask::State::timed_out && at != std::string::npos)
                        // the name and attempts are above; the colour says it timed out
                        label += "\n" + clip(t.message.compare(at, 11, "timed out: ") == 0 ? t.message.substr(at + 11)
                                                                                           : t.message.substr(at));
                    else
                        label += "\n" + clip(detail::views::failure_line(trace_, t));
                    break;
            }
        } else {
            std::int64_t lo = INT64_MAX, hi = INT64_MIN, first = INT64_MAX, last = INT64_MIN;
            std::int64_t shortest = INT64_MAX, longest = -1;
            std::set<std::string> activities;
            for (const TraceTask* x : n.tasks) {
                lo = std::min(lo, x->call);
                hi = std::max(hi, x->call);
                if (x->run_start() >= 0) first = std::min(first, x->run_start());
                if (x->run_end() >= 0) last = std::max(last, x->run_end());
                if (std::int64_t d = x->run_us(); d >= 0) {
                    shortest = std::min(shortest, d);
                    longest = std::max(longest, d);
                }
                activities.insert(x->activity);
            }
            std::string count = std::to_string(n.tasks.size());
            if (activities.size() == 1)
                label = t.activity + " x " + count + (n.chain ? ", a chain" : "") + "\n#" + std::to_string(lo) + "-#" +
                        std::to_string(hi);
            else
                label = count + " tasks: " + clip(join(activities), 30);
            if (first != INT64_MAX && last != INT64_MIN)
                label += "\nfrom " + ms(first - trace_.runs().front().started_us) + " to " +
                         ms(last - trace_.runs().front().started_us);
            if (longest >= 0)
                label +=
                    "\n" + (ms(shortest) == ms(longest) ? ms(longest) : ms(shortest) + " to " + ms(longest)) + " each";
            label += "\n" + std::string(st.name);
            if (!t.message.empty() && t.state != TraceTask::State::skipped) label += ": " + clip(t.message, 30);
            set(a, "peripheries", "2");
        }
        set_label(a, label);
        node_ptr_.push_back(a);
    }

    Agnode_t* node(const std::string& id) {
        std::size_t t = ids_.find(id);  // a read names the attempt it read: any attempt finds its task
        return t == detail::TaskIndex::none ? nullptr : node_ptr_[node_of_[t]];
    }

    enum class Edge { data, read, after };
    void edge(Agnode_t* from, Agnode_t* to, Edge kind) {
        if (!from || !to || from == to) return;
        auto key = std::make_pair(from, to);
        if (!seen_.insert(key).second) return;
        Agedge_t* e = agedge(g_, from, to, nullptr, 1);
        style_edge(e, kind);
    }
    static void style_edge(Agedge_t* e, Edge kind) {
        if (kind == Edge::read) {
            set(e, "style", "dashed");
            set(e, "color", "#757575");
        } else if (kind == Edge::after) {
            set(e, "style", "dashed");
            set(e, "penwidth", "1.6");
            set(e, "color", "#3949ab");
        }
    }

    void edges(Agnode_t* input, Agnode_t* result) {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            Agnode_t* to = node_ptr_[i];
            bool has_input = false;
            for (const TraceTask* t : nodes_[i].tasks) {
                for (const auto& a : t->args) {
                    edge(node(a), to, Edge::data);
                    has_input = true;
                }
            }
            for (const TraceTask* t : nodes_[i].tasks) {
                for (const auto& a : t->after) {
                    edge(node(a), to, Edge::after);
                    has_input = true;
                }
                for (const auto& r : t->reads)
                    if (std::find(t->args.begin(), t->args.end(), r) == t->args.end()) edge(node(r), to, Edge::read);
                // a call with no input made after the body read a result waited for that read
                std::size_t by = held_by_[static_cast<std::size_t>(t - trace_.tasks().data())];
                if (t->args.empty() && t->reads.empty() && t->after.empty() && by != SIZE_MAX) {
                    edge(node(trace_.tasks()[by].id), to, Edge::read);
                    has_input = true;
                }
                if (!t->reads.empty()) has_input = true;
            }
            const TraceTask& t = *nodes_[i].tasks.front();
            if (!has_input) {
                if (t.incarnation > 0)
                    edge(restart_node(t.frame, t.incarnation), to, Edge::data);
                else if (t.frame.empty())
                    edge(input, to, Edge::data);
            }
            // a child's result flows back to its call
            if (t.child)
                for (std::size_t j = 0; j < nodes_.size(); ++j) {
                    const TraceTask& inner = *nodes_[j].tasks.front();
                    if (inner.frame == t.id + "/" && is_last_of_frame(inner)) edge(node_ptr_[j], to, Edge::read);
                }
        }
        for (const TraceRestart& r : trace_.restarts()) {
            Agnode_t* rn = restart_node(r.frame, r.incarnation);
            for (const auto& a : r.args) edge(node(a), rn, Edge::data);
        }
        const TraceRun& run = trace_.runs().back();
        if (Agnode_t* from = node(run.from)) {
            edge(from, result, Edge::data);
        } else if (!run.reads.empty()) {  // a value computed from the results it read last
            for (const std::string& r : run.reads) edge(node(r), result, Edge::read);
        } else {
            // a plain value: it came from the last incarnation of the top workflow
            int last = -1;
            for (const TraceRestart& r : trace_.restarts())
                if (r.frame.empty()) last = std::max(last, r.incarnation);
            auto read = last_read_.find("#" + std::to_string(std::max(last, 0)));
            if (read != last_read_.end() && read->second != SIZE_MAX)
                edge(node(trace_.tasks()[read->second].id), result, Edge::read);  // computed after that read
            else
                edge(last > 0 ? restart_node("", last) : input, result, Edge::data);
        }
    }

    /// The node standing for restart() into incarnation `n` of a frame, in its cluster.
    Agnode_t* restart_node(const std::string& frame, int n) {
        TraceTask probe;
        probe.frame = frame;
        probe.incarnation = n;
        Agraph_t* where = graph_for(probe);
        std::string name = "restart:" + frame + "#" + std::to_string(n);
        Agnode_t* a = agnode(where, c(name), 0);
        if (a) return a;
        a = agnode(where, c(name), 1);
        set(a, "shape", "cds");
        set(a, "label", "restart " + std::to_string(n));
        set(a, "style", "filled");
        set(a, "fillcolor", "#e3f2fd");
        return a;
    }

    bool is_last_of_frame(const TraceTask& t) const {
        for (const TraceTask& o : trace_.tasks())
            if (o.frame == t.frame && o.ended_us > t.ended_us) return false;
        return true;
    }

    /// Rows follow time: the tasks of one frame dispatched in one batch share a row (unless
    /// that row would be wider than a level may be).
    void rows() {
        std::map<std::pair<std::string, int>, std::vector<Agnode_t*>> batches;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (nodes_[i].tasks.size() != 1) continue;  // a fold spans batches
            const TraceTask& t = *nodes_[i].tasks.front();
            if (t.batch < 0) continue;
            batches[{t.frame + "#" + std::to_string(t.incarnation), t.batch}].push_back(node_ptr_[i]);
        }
        int n = 0;
        for (auto& [key, members] : batches) {
            if (members.size() < 2 || members.size() > max_row) continue;
            Agraph_t* sg = agsubg(agraphof(members.front()), c("row" + std::to_string(n++)), 1);
            set(sg, "rank", "same");
            for (Agnode_t* m : members) agsubnode(sg, m, 1);
        }
    }

    void legend() {
        Agraph_t* sg = agsubg(g_, c("cluster_legend"), 1);
        set(sg, "label", "legend");
        set(sg, "style", "rounded");
        set(sg, "color", "#bdbdbd");
        Agraph_t* row = agsubg(sg, c("legend_row"), 1);
        set(row, "rank", "same");
        Agnode_t* prev = nullptr;
        for (auto s : {TraceTask::State::finished, TraceTask::State::failed, TraceTask::State::timed_out,
                       TraceTask::State::crashed, TraceTask::State::skipped, TraceTask::State::interrupted,
                       TraceTask::State::never_finished}) {
            Style st = style_of(s);
            Agnode_t* n = agnode(row, c(std::string("legend_") + st.name), 1);
            set(n, "label", st.name);
            set(n, "shape", st.shape);
            set(n, "style", st.style);
            set(n, "fillcolor", st.fill);
            if (prev) {
                Agedge_t* e = agedge(sg, prev, n, nullptr, 1);
                set(e, "style", "invis");
            }
            prev = n;
        }
        Agnode_t* a = agnode(row, c("legend_data"), 1);
        Agnode_t* b = agnode(row, c("legend_control"), 1);
        set(a, "label", "result passed on ->");
        set(b, "label", "read before the call");
        std::vector<Agnode_t*> keys{a, b};
        bool any_after = false;
        for (const TraceTask& t : trace_.tasks()) any_after = any_after || !t.after.empty();
        if (any_after) {
            keys.push_back(agnode(row, c("legend_after"), 1));
            set(keys.back(), "label", "ran after (no value)");
        }
        for (Agnode_t* x : keys) {
            set(x, "shape", "plaintext");
            set(x, "style", "");
        }
        Agedge_t* e = agedge(sg, prev, a, nullptr, 1);
        set(e, "style", "invis");
        style_edge(agedge(sg, a, b, nullptr, 1), Edge::read);
        if (any_after) style_edge(agedge(sg, b, keys.back(), nullptr, 1), Edge::after);
    }

    const Trace& trace_;
    Agraph_t* g_ = nullptr;
    std::vector<Node> nodes_;
    std::vector<std::size_t> held_by_;                        // by task: the task whose read its call waited for
    std::unordered_map<std::string, std::size_t> last_read_;  // by frame and incarnation
    std::vector<Agnode_t*> node_ptr_;
    detail::TaskIndex ids_;             // the trace's tasks by id
    std::vector<std::size_t> node_of_;  // by task: its node
    std::set<std::pair<Agnode_t*, Agnode_t*>> seen_;
    std::set<std::string> restarted_frames_;
};

std::mutex graphviz;  // Graphviz is not thread-safe

std::string write_dot(Agraph_t* g) {
    char* buf = nullptr;
    std::size_t len = 0;
    FILE* f = open_memstream(&buf, &len);
    if (!f) throw std::runtime_error("flowy: cannot make an in-memory stream");
    agwrite(g, f);
    std::fclose(f);
    std::string out(buf, len);
    std::free(buf);
    return out;
}

}  // namespace

std::string Trace::to_dot() const {
    std::lock_guard<std::mutex> l(graphviz);
    Agraph_t* g = Builder(*this).build();
    std::string out = write_dot(g);
    agclose(g);
    return out;
}

namespace {

/// Lays the picture of `trace` out with dot and hands it to `render(gvc, graph)`, which
/// returns Graphviz's status; throws saying `what` could not be rendered.
template <class Render>
void render_laid_out(const Trace& trace, const std::string& what, Render&& render) {
    std::lock_guard<std::mutex> l(graphviz);
    Agraph_t* g = Builder(trace).build();
    std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> close(g, agclose);
    // One context for the process, never freed: Graphviz's pango plugin keeps the name of
    // the last font it measured, which a freed context's font table owned, so a second
    // context read freed memory (AddressSanitizer: heap-use-after-free in textspan_size,
    // the second picture a program drew).
    static GVC_t* const gvc = gvContext();
    if (gvLayout(gvc, g, "dot") != 0) throw std::runtime_error("flowy: Graphviz could not lay the graph out");
    int rc = render(gvc, g);
    gvFreeLayout(gvc, g);
    if (rc != 0) throw std::runtime_error("flowy: Graphviz could not render " + what);
}

}  // namespace

std::string Trace::to_svg() const {
    std::string out;
    render_laid_out(*this, "the picture as SVG", [&](GVC_t* gvc, Agraph_t* g) {
        char* data = nullptr;
        unsigned int len = 0;
        int rc = gvRenderData(gvc, g, "svg", &data, &len);
        if (rc == 0 && data) out.assign(data, len);
        if (data) gvFreeRenderData(data);
        return rc;
    });
    return out;
}

void Trace::write_svg(const std::string& path) const {
    std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
    if (ext == ".dot") {
        std::string text = to_dot();
        FILE* f = std::fopen(path.c_str(), "w");
        if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size())
            throw std::runtime_error("flowy: cannot write " + path + ": " + std::strerror(errno));
        std::fclose(f);
        return;
    }
    const char* format = ext == ".png" ? "png" : "svg";
    render_laid_out(*this, path + " as " + format,
                    [&](GVC_t* gvc, Agraph_t* g) { return gvRenderFilename(gvc, g, format, path.c_str()); });
}

}  // namespace flowy
