// The picture of a trace: a Graphviz graph built with cgraph, laid out and rendered
// in-process with gvc. All Graphviz calls happen on the calling thread (it is not
// thread-safe); DOT text is what tests compare (SVG bytes vary by Graphviz version).

#include <flowy/trace.hpp>

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

constexpr std::size_t fold_above = 300;

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
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
}

std::int64_t duration(const TraceTask& t) {
    if (t.run_start() < 0 || t.run_end() < 0) return -1;  // a cached task shows the time it took then: 0
    return std::max<std::int64_t>(0, t.run_end() - t.run_start());
}

/// A node of the picture: one task, or a fold of siblings.
struct Node {
    std::string name;
    std::vector<const TraceTask*> tasks;
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
        std::string title = run.workflow + " on " + run.executor + " (" + std::to_string(run.workers) + " workers)";
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
                set(result, "label", "result\n" + clip(run.short_value));
                set(result, "fillcolor", "#d4edda");
                break;
            case TraceRun::Outcome::failed:
                set(result, "label", "failed\n" + clip(run.message));
                set(result, "fillcolor", "#f8d7da");
                break;
            case TraceRun::Outcome::cancelled:
                set(result, "label", "cancelled");
                set(result, "fillcolor", "#eeeeee");
                break;
            case TraceRun::Outcome::running:
                set(result, "label", "never finished");
                set(result, "fillcolor", "#ffffff");
                break;
        }
        edges(input, result);
        rows();
        legend();
        return g_;
    }

private:
    /// Past `fold_above` tasks, siblings (same frame, incarnation, activity, inputs and
    /// state) fold into one node each.
    void group() {
        const auto& tasks = trace_.tasks();
        bool fold = tasks.size() > fold_above;
        std::map<std::string, std::size_t> groups;
        for (const TraceTask& t : tasks) {
            std::string key = t.id;
            if (fold && !t.child) {
                std::vector<std::string> args = t.args;
                std::sort(args.begin(), args.end());
                key = t.frame + "\x1f" + std::to_string(t.incarnation) + "\x1f" + t.activity + "\x1f" +
                      std::to_string(static_cast<int>(t.state));
                for (const auto& a : args) key += "\x1f" + a;
            }
            auto [it, fresh] = groups.emplace(key, nodes_.size());
            if (fresh) nodes_.push_back(Node{t.id, {}});
            nodes_[it->second].tasks.push_back(&t);
            node_of_[t.id] = it->second;
        }
        for (const TraceRestart& r : trace_.restarts()) restarted_frames_.insert(r.frame);
    }

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
            std::int64_t d = duration(t);
            if (d >= 0) label += "\n" + ms(d);
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
                default:
                    label += "\n" + clip(t.message);
                    break;
            }
        } else {
            std::int64_t lo = INT64_MAX, hi = INT64_MIN, first = INT64_MAX, last = INT64_MIN;
            for (const TraceTask* x : n.tasks) {
                lo = std::min(lo, x->call);
                hi = std::max(hi, x->call);
                if (x->dispatched_us >= 0) first = std::min(first, x->dispatched_us);
                if (x->ended_us >= 0) last = std::max(last, x->ended_us);
            }
            label = t.activity + " x " + std::to_string(n.tasks.size()) + "\n#" + std::to_string(lo) + "-#" +
                    std::to_string(hi);
            if (first != INT64_MAX && last != INT64_MIN)
                label += "\n" + ms(first - trace_.runs().front().started_us) + " to " +
                         ms(last - trace_.runs().front().started_us);
            label += "\n" + std::string(st.name);
            set(a, "peripheries", "2");
        }
        set(a, "label", label);
        node_ptr_.push_back(a);
    }

    Agnode_t* node(const std::string& id) {
        auto it = node_of_.find(id);
        return it == node_of_.end() ? nullptr : node_ptr_[it->second];
    }

    void edge(Agnode_t* from, Agnode_t* to, bool control) {
        if (!from || !to || from == to) return;
        auto key = std::make_pair(from, to);
        if (!seen_.insert(key).second) return;
        Agedge_t* e = agedge(g_, from, to, nullptr, 1);
        if (control) {
            set(e, "style", "dashed");
            set(e, "color", "#757575");
        }
    }

    void edges(Agnode_t* input, Agnode_t* result) {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            Agnode_t* to = node_ptr_[i];
            bool has_input = false;
            for (const TraceTask* t : nodes_[i].tasks) {
                for (const auto& a : t->args) {
                    edge(node(a), to, false);
                    has_input = true;
                }
            }
            for (const TraceTask* t : nodes_[i].tasks)
                for (const auto& r : t->reads)
                    if (std::find(t->args.begin(), t->args.end(), r) == t->args.end()) edge(node(r), to, true);
            const TraceTask& t = *nodes_[i].tasks.front();
            if (!has_input) {
                if (t.incarnation > 0)
                    edge(restart_node(t.frame, t.incarnation), to, false);
                else if (t.frame.empty())
                    edge(input, to, false);
            }
            // a child's result flows back to its call
            if (t.child)
                for (std::size_t j = 0; j < nodes_.size(); ++j) {
                    const TraceTask& inner = *nodes_[j].tasks.front();
                    if (inner.frame == t.id + "/" && is_last_of_frame(inner)) edge(node_ptr_[j], to, true);
                }
        }
        for (const TraceRestart& r : trace_.restarts()) {
            Agnode_t* rn = restart_node(r.frame, r.incarnation);
            for (const auto& a : r.args) edge(node(a), rn, false);
        }
        const TraceRun& run = trace_.runs().back();
        if (Agnode_t* from = node(run.from)) {
            edge(from, result, false);
        } else {
            // a plain value: it came from the last incarnation of the top workflow
            int last = -1;
            for (const TraceRestart& r : trace_.restarts())
                if (r.frame.empty()) last = std::max(last, r.incarnation);
            edge(last > 0 ? restart_node("", last) : input, result, false);
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

    /// Rows follow time: the tasks of one frame dispatched in one batch share a row.
    void rows() {
        std::map<std::pair<std::string, int>, std::vector<Agnode_t*>> batches;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            const TraceTask& t = *nodes_[i].tasks.front();
            if (t.batch < 0) continue;
            batches[{t.frame + "#" + std::to_string(t.incarnation), t.batch}].push_back(node_ptr_[i]);
        }
        int n = 0;
        for (auto& [key, members] : batches) {
            if (members.size() < 2) continue;
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
        for (Agnode_t* x : {a, b}) {
            set(x, "shape", "plaintext");
            set(x, "style", "");
        }
        Agedge_t* e = agedge(sg, prev, a, nullptr, 1);
        set(e, "style", "invis");
        Agedge_t* f = agedge(sg, a, b, nullptr, 1);
        set(f, "style", "dashed");
        set(f, "color", "#757575");
    }

    const Trace& trace_;
    Agraph_t* g_ = nullptr;
    std::vector<Node> nodes_;
    std::vector<Agnode_t*> node_ptr_;
    std::unordered_map<std::string, std::size_t> node_of_;
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

void Trace::write_svg(const std::string& path) const {
    std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
    std::lock_guard<std::mutex> l(graphviz);
    Agraph_t* g = Builder(*this).build();
    std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> close(g, agclose);
    if (ext == ".dot") {
        std::string text = write_dot(g);
        FILE* f = std::fopen(path.c_str(), "w");
        if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size())
            throw std::runtime_error("flowy: cannot write " + path + ": " + std::strerror(errno));
        std::fclose(f);
        return;
    }
    const char* format = ext == ".png" ? "png" : "svg";
    GVC_t* gvc = gvContext();
    std::unique_ptr<GVC_t, int (*)(GVC_t*)> free_gvc(gvc, gvFreeContext);
    if (gvLayout(gvc, g, "dot") != 0) throw std::runtime_error("flowy: Graphviz could not lay the graph out");
    int rc = gvRenderFilename(gvc, g, format, path.c_str());
    gvFreeLayout(gvc, g);
    if (rc != 0) throw std::runtime_error("flowy: Graphviz could not render " + path + " as " + format);
}

}  // namespace flowy
