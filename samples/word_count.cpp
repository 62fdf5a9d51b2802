// WordCount: a text cut into chunks (200 by default); each chunk's words are counted by
// one task, and the counts are merged pairwise as they finish (parallel_reduce), so the
// merges form a tree whose shape depends on which counts finish first.
//
//   word_count [--text FILE] [--chunks N] [sample options]
//
// Prints the three most frequent words, then the number of words on the last line (the
// same as `wc -w FILE`). The text is Debian's copy of the GPL unless --text says.
#include "common.hpp"

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

struct Counts {
    std::map<std::string, long> words;
    long total = 0;
    template <class A>
    void serialize(A& a) {
        a(words, total);
    }
    std::string describe() const {
        return std::to_string(total) + " words, " + std::to_string(words.size()) + " distinct";
    }
};

Counts count(std::string chunk) {
    Counts c;
    std::istringstream in(chunk);
    for (std::string w; in >> w;) {
        ++c.total;
        std::string key;
        for (char ch : w)
            if (std::isalnum(static_cast<unsigned char>(ch))) key += static_cast<char>(std::tolower(ch));
        if (!key.empty()) ++c.words[key];
    }
    return c;
}

Counts merge(Counts a, Counts b) {
    for (auto& [w, n] : b.words) a.words[w] += n;
    a.total += b.total;
    return a;
}

struct WordCount {
    flowy::Activity<Counts(std::string)> count{"count"};
    flowy::Activity<Counts(Counts, Counts)> merge{"merge"};
    flowy::Result<Counts> operator()(std::vector<std::string> chunks) {
        std::vector<flowy::Result<Counts>> counted;
        for (auto& c : chunks) counted.push_back(count(std::move(c)));
        return flowy::parallel_reduce(merge, counted);
    }
};

std::ostream& operator<<(std::ostream& out, const Counts& c) {
    std::vector<std::pair<long, std::string>> top;
    for (const auto& [w, n] : c.words) top.emplace_back(-n, w);
    std::sort(top.begin(), top.end());
    for (std::size_t i = 0; i < top.size() && i < 3; ++i) out << top[i].second << ": " << -top[i].first << "\n";
    return out << c.total;
}

int main(int argc, char** argv) {
    std::string path = "/usr/share/common-licenses/GPL-3";
    long chunks = 200;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--text" && i + 1 < argc)
            path = argv[++i];
        else if (a == "--chunks" && i + 1 < argc)
            chunks = std::atol(argv[++i]);
        else
            rest.push_back(argv[i]);
    }
    std::ifstream f(path);
    if (!f || chunks < 1) {
        std::cerr << "word_count: cannot read " << path << " (or --chunks is below 1)\n";
        return 1;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    // cut at whitespace into `chunks` pieces of about the same size
    std::vector<std::string> pieces;
    std::size_t start = 0;
    for (long k = 1; k <= chunks && start < text.size(); ++k) {
        std::size_t end = k == chunks ? text.size() : std::max(start, text.size() * k / chunks);
        while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
        pieces.push_back(text.substr(start, end - start));
        start = end;
    }
    return sample::main_with<WordCount>(
        static_cast<int>(rest.size()), rest.data(),
        [](auto& w) {
            w.conf_activity("count", count);
            w.conf_activity("merge", merge);
        },
        pieces);
}
