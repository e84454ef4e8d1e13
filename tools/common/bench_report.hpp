// How every `ferry bench` prints: one row per case with the baseline measured
// in the same run, ferry's figure and their ratio (ferry / baseline), as a
// table or as a JSON list of {name, baseline, ferry, ratio, unit}, and
// optionally as CSV for plotting (write_csv: a header line
// `name,baseline,ferry,ratio,unit`, then one line per row, names quoted).
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace ferry::bench {

struct row {
  std::string name;
  double baseline, ferry;
  std::string unit;
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Print `rows`; `baseline_header` names the baseline column of the table.
inline void print_rows(const std::vector<row>& rows, bool json, std::string_view baseline_header) {
  if (json) {
    fmt::print("[\n");
    for (std::size_t i = 0; i < rows.size(); ++i)
      fmt::print("  {{\"name\": \"{}\", \"baseline\": {:.6g}, \"ferry\": {:.6g}, \"ratio\": {:.4g}, \"unit\": \"{}\"}}{}\n",
                 rows[i].name, rows[i].baseline, rows[i].ferry, rows[i].ferry / rows[i].baseline, rows[i].unit,
                 i + 1 < rows.size() ? "," : "");
    fmt::print("]\n");
    return;
  }
  fmt::print("{:<50} {:>13} {:>13} {:>8}\n", "case", baseline_header, "ferry", "ratio");
  for (const auto& r : rows)
    fmt::print("{:<50} {:>9.4g} {:<3} {:>9.4g} {:<3} {:>8.3f}\n", r.name, r.baseline, r.unit, r.ferry, r.unit,
               r.ferry / r.baseline);
}

/// Write `rows` to the CSV file `path` (replaced); false if it cannot be written.
inline bool write_csv(const std::vector<row>& rows, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  fmt::print(f, "name,baseline,ferry,ratio,unit\n");
  for (const auto& r : rows) {
    std::string name;
    for (const char c : r.name) name += c == '"' ? std::string("\"\"") : std::string(1, c);
    fmt::print(f, "\"{}\",{:.6g},{:.6g},{:.4g},{}\n", name, r.baseline, r.ferry, r.ferry / r.baseline, r.unit);
  }
  return std::fclose(f) == 0;
}

}  // namespace ferry::bench
