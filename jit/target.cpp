#include "target.hpp"

#include <mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <llvm/ADT/StringSet.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/AArch64TargetParser.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/SubtargetFeature.h>

#include "error.hpp"

namespace ferry::jitd {
std::string host_features() {
  llvm::SubtargetFeatures f;
  for (const auto& [name, on] : llvm::sys::getHostCPUFeatures()) f.AddFeature(name, on);
  return f.getString();
}

namespace {

llvm::Expected<std::unique_ptr<llvm::MCSubtargetInfo>> subtarget(const llvm::Triple& triple, const std::string& cpu,
                                                                 const std::string& features) {
  std::string err;
  const llvm::Target* t = llvm::TargetRegistry::lookupTarget(triple.str(), err);
  if (!t) return fail(errc::unsupported, fmt::format("no LLVM target for {}: {}", triple.str(), err));
  std::unique_ptr<llvm::MCSubtargetInfo> sti(t->createMCSubtargetInfo(triple.str(), cpu, features));
  if (!sti) return fail(errc::unsupported, fmt::format("LLVM cannot describe cpu {} on {}", cpu, triple.str()));
  return sti;
}

// Major version of an LLVM version string ("19.1.7" -> 19), or -1.
int major_of(const std::string& v) {
  int major = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) major = major * 10 + (v[i] - '0');
  return i == 0 ? -1 : major;
}

// The architecture extensions of a named aarch64 CPU as a full feature
// string ("+neon,+crc,...,-sve,..."): every extension is named, on or off,
// so variant selection compares them all. Empty for an unknown CPU.
std::string aarch64_cpu_features(const std::string& cpu) {
  const auto info = llvm::AArch64::parseCpu(cpu);
  if (!info) return {};
  auto on = info->getImpliedExtensions();
  on |= info->Arch.DefaultExts;
  llvm::SubtargetFeatures f;
  for (const auto& ext : llvm::AArch64::Extensions) {
    if (ext.PosTargetFeature.empty()) continue;
    f.AddFeature(on.test(ext.ID) ? ext.PosTargetFeature : ext.NegTargetFeature);
  }
  return f.getString();
}

}  // namespace

struct node_target::verdict_cache {
  std::mutex mu;
  std::unordered_map<std::string, std::pair<std::string, unsigned>> by_key;  // key -> (refusal, specialisation)
};

node_target::~node_target() = default;
node_target::node_target(node_target&&) noexcept = default;
node_target& node_target::operator=(node_target&&) noexcept = default;

llvm::Expected<node_target> node_target::resolve(const jit_target& t) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  const jit_target host = jit_target::host();
  node_target n;
  n.desc_.triple = t.triple.empty() ? host.triple : t.triple;
  n.desc_.cpu = t.cpu.empty() ? host.cpu : t.cpu;
  n.triple_ = llvm::Triple(n.desc_.triple);
  if (n.triple_.getArch() != llvm::Triple(host.triple).getArch()) {
    // Another architecture's code (a cross-target JIT, variant-choice tests):
    // its LLVM target must be registered too.
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllTargets();
    llvm::InitializeAllAsmPrinters();
  }
  if (!t.features.empty()) n.desc_.features = t.features;
  else if (!t.cpu.empty() && n.triple_.isAArch64()) n.desc_.features = aarch64_cpu_features(t.cpu);
  else n.desc_.features = host.features;
  auto sti = subtarget(n.triple_, n.desc_.cpu, n.desc_.features);
  if (!sti) return sti.takeError();
  n.sti_ = std::move(*sti);
  if (!n.sti_->isCPUStringValid(n.desc_.cpu))
    return fail(errc::unsupported, fmt::format("unknown CPU '{}' for {}", n.desc_.cpu, n.desc_.triple));
  n.verdicts_ = std::make_unique<verdict_cache>();
  return n;
}

llvm::orc::JITTargetMachineBuilder node_target::machine_builder() const {
  llvm::orc::JITTargetMachineBuilder b(triple_);
  b.setCPU(desc_.cpu);
  llvm::SubtargetFeatures f(desc_.features);
  b.addFeatures(f.getFeatures());
  // PIC + small code model: JITLink places GOT/PLT stubs for anything far away.
  b.setRelocationModel(llvm::Reloc::PIC_);
  b.setCodeModel(llvm::CodeModel::Small);
  return b;
}

std::string node_target::refusal(const code_variant& v, unsigned* specialisation) const {
  const llvm::Triple vt(v.triple);
  if (vt.getArch() != triple_.getArch() || vt.getOS() != triple_.getOS())
    return fmt::format("needs {}, this node is {}", v.triple, triple_.str());
  if (major_of(v.llvm_version) != LLVM_VERSION_MAJOR)
    return fmt::format("built by LLVM '{}', this node reads LLVM {} bitcode", v.llvm_version, LLVM_VERSION_MAJOR);
  // An explicit "+f" this LLVM does not know can never be satisfied here.
  const auto table = sti_->getAllProcessorFeatures();
  llvm::StringSet<> explicit_features;
  const llvm::SubtargetFeatures wanted_features(v.features);  // named: the loop borrows from it
  for (const auto& f : wanted_features.getFeatures()) {
    if (f.size() < 2 || f[0] != '+') continue;
    const llvm::StringRef name = llvm::StringRef(f).drop_front();
    const bool known = llvm::any_of(table, [&](const llvm::SubtargetFeatureKV& kv) { return name == kv.Key; });
    if (!known) return fmt::format("needs CPU feature '{}', unknown to this node", name.str());
    explicit_features.insert(name);
  }
  const std::string cpu = v.cpu.empty() ? "generic" : v.cpu;
  if (!sti_->isCPUStringValid(cpu)) return fmt::format("needs CPU '{}', unknown to this node", cpu);
  // Compare ISA features only: those named in the node's feature string, on
  // or off (host detection names every ISA feature it knows; a CPU given by
  // name names its architecture extensions). Tuning flags and code
  // generation modes (+outline-atomics, which clang sets on every aarch64
  // Linux compile) differ without making code illegal. A node whose string
  // names nothing checks every feature the variant asks for explicitly.
  llvm::StringSet<> isa;
  const llvm::SubtargetFeatures node_features(desc_.features);
  for (const auto& f : node_features.getFeatures())
    if (f.size() > 1) isa.insert(llvm::StringRef(f).drop_front());
  auto is_requirement = [&](llvm::StringRef name) {
    return isa.empty() ? explicit_features.contains(name) : isa.contains(name);
  };
  // A baseline CPU implies nothing beyond what every CPU of the arch has:
  // checking the explicit features suffices and spares building a
  // subtarget (~0.1 ms, on the path of a disk-cache hit after restart).
  if (cpu == "generic" || cpu == "x86-64") {
    for (const auto& name : explicit_features.keys()) {
      if (!is_requirement(name)) continue;
      for (const auto& kv : table)
        if (name == kv.Key && !sti_->getFeatureBits().test(kv.Value))
          return fmt::format("needs CPU features this node lacks: {}", name.str());
    }
    *specialisation = static_cast<unsigned>(explicit_features.size());
    return {};
  }
  auto vsti = subtarget(vt, cpu, v.features);
  if (!vsti) return llvm::toString(vsti.takeError());
  std::string missing;
  for (const auto& kv : table) {
    const bool wanted = (*vsti)->getFeatureBits().test(kv.Value);
    if (!wanted || sti_->getFeatureBits().test(kv.Value)) continue;
    if (!is_requirement(kv.Key)) continue;
    missing += missing.empty() ? "" : ",";
    missing += kv.Key;
  }
  if (!missing.empty()) return fmt::format("needs CPU features this node lacks: {}", missing);
  *specialisation = static_cast<unsigned>((*vsti)->getFeatureBits().count());
  return {};
}

std::string node_target::cached_refusal(const code_variant& v, unsigned* specialisation) const {
  std::string key = v.triple + '\0' + v.cpu + '\0' + v.features + '\0' + v.llvm_version;
  std::lock_guard lock(verdicts_->mu);
  auto it = verdicts_->by_key.find(key);
  if (it == verdicts_->by_key.end()) {
    unsigned score = 0;
    std::string why = refusal(v, &score);
    it = verdicts_->by_key.emplace(std::move(key), std::pair{std::move(why), score}).first;
  }
  *specialisation = it->second.second;
  return it->second.first;
}

std::size_t node_target::judged_variants() const {
  std::lock_guard lock(verdicts_->mu);
  return verdicts_->by_key.size();
}

llvm::Expected<const code_variant*> node_target::select(const code_object& code) const {
  const code_variant* best = nullptr;
  unsigned best_score = 0;
  std::string offers;
  for (const auto& v : code.variants) {
    unsigned score = 0;
    const std::string why = cached_refusal(v, &score);
    if (why.empty()) {
      if (!best || score > best_score) best = &v, best_score = score;
      continue;
    }
    offers += fmt::format("\n  {} cpu={} features='{}': {}", v.triple, v.cpu, v.features, why);
  }
  if (best) return best;
  return fail(errc::no_matching_variant,
              fmt::format("no variant of {} runs on this node ({}, cpu {}); offered:{}", code.name, triple_.str(),
                          desc_.cpu, offers.empty() ? " nothing" : offers));
}

}  // namespace ferry::jitd

namespace ferry {

jit_target jit_target::host() {
  return {llvm::sys::getProcessTriple(), llvm::sys::getHostCPUName().str(), jitd::host_features()};
}

}  // namespace ferry
