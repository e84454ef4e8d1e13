// How every `ferry bench` prints: the run's parameters, then one row per
// case with the baseline measured in the same run, ferry's figure and their
// ratio (ferry / baseline). As a table, or as JSON:
//   {"parameters": {"servers": 2, "tls": "shm", ...},
//    "results": [{"name": ..., "baseline": ..., "ferry": ..., "ratio": ..., "unit": ...}, ...]}
// (one result per line, so that line tools can pick rows). A benchmark that
// measures both in several rounds, each round the two back to back, adds
// "ratio_range": [low, high] to a result: the lowest and the highest of the
// rounds' own ratios, i.e. how far one round's verdict could fall from the
// run's (the table prints them in a last column).
// CSV for plotting is made from the JSON, for every benchmark alike
// (tools/bench/bench_csv.py, `make bench`).
#pragma once

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace ferry::bench {

struct row {
  std::string name;
  double baseline, ferry;
  std::string unit;
  /// The lowest and highest ferry / baseline of the rounds that measured
  /// both back to back (paired_ratio_range()), where the benchmark has rounds.
  std::optional<std::pair<double, double>> ratio_range{};
};

/// The lowest and highest ferry[i] / baseline[i] over paired rounds (the
/// two vectors in round order, of equal non-zero length).
inline std::pair<double, double> paired_ratio_range(const std::vector<double>& baseline, const std::vector<double>& ferry) {
  std::pair<double, double> r{ferry.at(0) / baseline.at(0), ferry.at(0) / baseline.at(0)};
  for (std::size_t i = 1; i < baseline.size() && i < ferry.size(); ++i) {
    r.first = std::min(r.first, ferry[i] / baseline[i]);
    r.second = std::max(r.second, ferry[i] / baseline[i]);
  }
  return r;
}

/// What a run was measured with: names and values, in the order added.
class parameters {
 public:
  parameters& add(std::string_view key, std::string_view value) {
    entries_.emplace_back(std::string(key), fmt::format("\"{}\"", json_escape(value)));
    return *this;
  }
  parameters& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  parameters& add(std::string_view key, bool value) {
    entries_.emplace_back(std::string(key), value ? "true" : "false");
    return *this;
  }
  template <class N>
    requires std::is_arithmetic_v<N>
  parameters& add(std::string_view key, N value) {
    entries_.emplace_back(std::string(key), fmt::format("{}", value));
    return *this;
  }
  /// {"key": value, ...}
  [[nodiscard]] std::string json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < entries_.size(); ++i)
      out += fmt::format("{}\"{}\": {}", i ? ", " : "", json_escape(entries_[i].first), entries_[i].second);
    return out + "}";
  }
  /// key=value, ... (strings without their quotes)
  [[nodiscard]] std::string text() const {
    std::string out;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      std::string v = entries_[i].second;
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      out += fmt::format("{}{}={}", i ? ", " : "", entries_[i].first, v);
    }
    return out;
  }

  static std::string json_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\', out += c;
      else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      else out += c;
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// Run `run(i)` for every case i in [0, cases), starting at `round % cases`
/// and wrapping: the order of a round's cases rotates from round to round
/// (with two, they alternate), so a change of the machine's speed falls on
/// every case alike. The benchmarks that measure in rounds run them so.
template <class Run>
void in_rotating_order(std::size_t round, std::size_t cases, Run&& run) {
  for (std::size_t k = 0; k < cases; ++k) run((k + round) % cases);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Print `params` and `rows`; `baseline_header` names the baseline column
/// of the table.
inline void print_rows(const std::vector<row>& rows, bool json, std::string_view baseline_header,
                       const parameters& params) {
  if (json) {
    fmt::print("{{\"parameters\": {},\n \"results\": [\n", params.json());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      const std::string range =
          r.ratio_range ? fmt::format(", \"ratio_range\": [{:.4g}, {:.4g}]", r.ratio_range->first, r.ratio_range->second)
                        : std::string();
      fmt::print("  {{\"name\": \"{}\", \"baseline\": {:.6g}, \"ferry\": {:.6g}, \"ratio\": {:.4g}, \"unit\": \"{}\"{}}}{}\n",
                 parameters::json_escape(r.name), r.baseline, r.ferry, r.ferry / r.baseline,
                 parameters::json_escape(r.unit), range, i + 1 < rows.size() ? "," : "");
    }
    fmt::print("]}}\n");
    return;
  }
  const bool ranges = std::any_of(rows.begin(), rows.end(), [](const row& r) { return r.ratio_range.has_value(); });
  // Columns as wide as their longest entry (at least 50 for the case, 3 for the unit).
  std::size_t name_width = 50, unit_width = 3;
  for (const auto& r : rows) {
    name_width = std::max(name_width, r.name.size());
    unit_width = std::max(unit_width, r.unit.size());
  }
  const std::size_t figure_width = 10 + unit_width;  // "{:>9.4g} {unit}"
  fmt::print("parameters: {}\n", params.text());
  fmt::print("{:<{}} {:>{}} {:>{}} {:>8}{}\n", "case", name_width, baseline_header, figure_width, "ferry", figure_width,
             "ratio", ranges ? "   rounds' ratios" : "");
  for (const auto& r : rows) {
    const std::string range =
        r.ratio_range ? fmt::format("   {:.3f}-{:.3f}", r.ratio_range->first, r.ratio_range->second) : std::string();
    fmt::print("{:<{}} {:>9.4g} {:<{}} {:>9.4g} {:<{}} {:>8.3f}{}\n", r.name, name_width, r.baseline, r.unit,
               unit_width, r.ferry, r.unit, unit_width, r.ferry / r.baseline, range);
  }
}

}  // namespace ferry::bench
