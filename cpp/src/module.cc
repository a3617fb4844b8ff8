// pybind11 bindings: compiler.coral._codegen. Python hands over plain dicts and numpy arrays;
// compiler/coral/codegen.py is the typed wrapper the rest of the compiler uses.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "coral/codegen.h"

namespace py = pybind11;
using namespace coral;

namespace {

// The target's [isa] table: xlen, vlen, elen, vector_registers, march_scalar, arch (default "rvv"; other
// keys are ignored).
Target to_target(const py::dict& isa) {
  auto number = [&](const char* key) {
    if (!isa.contains(key)) throw SpecError(std::string("the target's [isa] has no '") + key + "'");
    return py::cast<int>(isa[key]);
  };
  Target t{number("xlen"), number("vlen"), number("elen"), number("vector_registers"),
           isa.contains("march_scalar") ? py::cast<std::string>(isa["march_scalar"]) : "",
           isa.contains("arch") ? py::cast<std::string>(isa["arch"]) : "rvv"};
  if ((t.xlen != 32 && t.xlen != 64) || t.vlen < 64 || (t.vlen & (t.vlen - 1)) != 0 || (t.elen != 32 && t.elen != 64) ||
      t.vector_registers < 8) {
    throw SpecError(fmt("unsupported target [isa]: xlen %d, vlen %d, elen %d, %d vector registers", t.xlen, t.vlen,
                        t.elen, t.vector_registers));
  }
  return t;
}

KernelSpec to_spec(const std::string& kernel, const std::string& name, const py::dict& params, const py::dict& isa) {
  KernelSpec spec{kernel, name, {}, to_target(isa)};
  for (auto item : params) spec.params[py::cast<std::string>(item.first)] = py::cast<int64_t>(item.second);
  return spec;
}

Arrays to_arrays(const py::dict& arrays) {
  Arrays out;
  for (auto item : arrays) {
    if (item.second.is_none()) continue;
    auto array = py::array::ensure(item.second);
    if (!array) throw SpecError("array '" + py::cast<std::string>(item.first) + "' is not array-like");
    std::string dtype = py::cast<std::string>(py::str(array.dtype()));
    auto values = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(array);
    Array converted{dtype, std::vector<int64_t>(array.shape(), array.shape() + array.ndim()),
                    std::vector<int32_t>(values.data(), values.data() + values.size())};
    out[py::cast<std::string>(item.first)] = std::move(converted);
  }
  return out;
}

// A partial schedule is a constraint: the knobs it names, the default for the rest. When it fixes
// weight_pack, the rest is the best default for that packing (i8 weights change the register budget).
Schedule to_schedule(const py::object& obj, const KernelEntry& entry, const KernelSpec& spec) {
  if (obj.is_none()) return entry.default_schedule(spec);
  py::dict knobs = py::cast<py::dict>(obj);
  Schedule s = knobs.contains("weight_pack") && entry.default_for_pack
                   ? entry.default_for_pack(spec, py::cast<std::string>(knobs["weight_pack"]))
                   : entry.default_schedule(spec);
  for (auto item : knobs) {
    auto key = py::cast<std::string>(item.first);
    if (key == "oc_tile") s.oc_tile = py::cast<int>(item.second);
    else if (key == "px_tile") s.px_tile = py::cast<int>(item.second);
    else if (key == "lmul") s.lmul = py::cast<int>(item.second);
    else if (key == "loop_order") s.loop_order = py::cast<std::string>(item.second);
    else if (key == "unroll") s.unroll = py::cast<int>(item.second);
    else if (key == "weight_pack") s.weight_pack = py::cast<std::string>(item.second);
    else throw SpecError("unknown schedule knob '" + key + "'");
  }
  return s;
}

py::dict from_schedule(const Schedule& s) {
  py::dict d;
  d["oc_tile"] = s.oc_tile;
  d["px_tile"] = s.px_tile;
  d["lmul"] = s.lmul;
  d["loop_order"] = s.loop_order;
  d["unroll"] = s.unroll;
  d["weight_pack"] = s.weight_pack;
  return d;
}

}  // namespace

PYBIND11_MODULE(_codegen, m) {
  m.doc() = "RVV kernel codegen: kernel spec + schedule -> C with RVV intrinsics or portable C";
  py::register_exception<SpecError>(m, "SpecError", PyExc_ValueError);

  m.def("kernels", &kernel_names, py::arg("arch") = "rvv", "Kernel names the codegen implements for an emitter family.");

  m.def(
      "default_schedule",
      [](const std::string& kernel, const py::dict& params, const py::dict& isa) {
        KernelSpec spec = to_spec(kernel, "kernel", params, isa);
        return from_schedule(find_kernel(kernel, spec.target.arch).default_schedule(spec));
      },
      py::arg("kernel"), py::arg("params"), py::arg("isa"));

  m.def(
      "validate",
      [](const std::string& kernel, const py::dict& params, const py::dict& isa, const py::object& schedule) {
        KernelSpec spec = to_spec(kernel, "kernel", params, isa);
        const KernelEntry& entry = find_kernel(kernel, spec.target.arch);
        return entry.validate(spec, to_schedule(schedule, entry, spec));
      },
      py::arg("kernel"), py::arg("params"), py::arg("isa"), py::arg("schedule") = py::none(),
      "Empty string if the schedule is valid for the spec, else the reason.");

  m.def(
      "emit",
      [](const std::string& kernel, const std::string& name, const py::dict& params, const py::dict& arrays,
         const py::dict& isa, const py::object& schedule, bool vector) {
        KernelSpec spec = to_spec(kernel, name, params, isa);
        const KernelEntry& entry = find_kernel(kernel, spec.target.arch);
        Schedule chosen = to_schedule(schedule, entry, spec);
        std::string why = entry.validate(spec, chosen);
        if (!why.empty()) throw SpecError(kernel + " " + name + ": invalid schedule: " + why);
        Emitted out = entry.emit(spec, to_arrays(arrays), chosen, vector);
        py::dict result;
        result["source"] = out.source;
        result["scratch_bytes"] = out.scratch_bytes;
        result["constant_bytes"] = out.constant_bytes;
        result["schedule"] = from_schedule(out.schedule);
        return result;
      },
      py::arg("kernel"), py::arg("name"), py::arg("params"), py::arg("arrays"), py::arg("isa"),
      py::arg("schedule") = py::none(),
      py::arg("vector") = true);
}
