"""The CPU fingerprint: parsed from fixture texts, compared on vendor + model + ISA set, never on cores."""

from nse_hw.hostcpu import (
    OTHER,
    SAME,
    UNKNOWN,
    build_hint,
    cpu_id,
    cpu_status,
    cpu_warning,
    describe,
    differences,
    parse_cpuinfo,
    parse_lscpu,
    read_governor,
    same_cpu,
    this_cpu,
)
from tests.fixtures.cpuinfo import AMD_CPUINFO, AMD_CPUINFO_8, AMD_LSCPU, INTEL_CPUINFO

AMD, INTEL = parse_cpuinfo(AMD_CPUINFO), parse_cpuinfo(INTEL_CPUINFO)


def test_parse_cpuinfo_amd():
    assert (AMD["vendor"], AMD["model_name"], AMD["family"], AMD["model"], AMD["stepping"]) == \
        ("AuthenticAMD", "AMD EPYC", 25, 17, 1)
    assert AMD["logical_cores"] == 2 and AMD["hypervisor"] is True
    # the dispatch-relevant flags only, in ISA_FLAGS order; avx512vbmi etc. are not among them
    assert AMD["isa"] == ["sse4_1", "sse4_2", "avx", "fma", "f16c", "avx2", "avx512f", "avx512dq", "avx512bw",
                          "avx512vl", "avx512_vnni", "avx512_bf16"]
    assert "amx_tile" not in AMD["isa"]
    assert describe(AMD) == "AMD EPYC (AuthenticAMD family 25 model 17, Zen 4; AVX2, AVX-512, VNNI, BF16)"


def test_parse_cpuinfo_intel_has_amx():
    assert {"amx_tile", "amx_int8", "avx_vnni", "avx512_fp16"} <= set(INTEL["isa"])
    assert "Sapphire Rapids" in describe(INTEL) and "AMX" in describe(INTEL)


def test_lscpu_gives_the_same_fingerprint():
    lscpu = parse_lscpu(AMD_LSCPU)
    assert same_cpu(lscpu, AMD) and lscpu["hypervisor"] is True and lscpu["logical_cores"] == 2


def test_same_cpu_ignores_cores_and_governor():
    big = parse_cpuinfo(AMD_CPUINFO_8, governor="performance")
    assert big["logical_cores"] == 8 and big["governor"] == "performance"
    assert same_cpu(AMD, big) and cpu_id(AMD) == cpu_id(big) and differences(AMD, big) == []


def test_same_cpu_sees_an_isa_difference():
    no_vnni = {**AMD, "isa": [f for f in AMD["isa"] if f != "avx512_vnni"]}
    assert not same_cpu(AMD, no_vnni) and cpu_id(AMD) != cpu_id(no_vnni)
    assert differences(no_vnni, AMD) == ["ISA here only: avx512_vnni"]


def test_differences_amd_table_on_intel_host():
    d = differences(AMD, INTEL)
    assert d[:4] == ["vendor 'AuthenticAMD' vs 'GenuineIntel'",
                     "model_name 'AMD EPYC' vs 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz'",
                     "family 25 vs 6", "model 17 vs 143"]
    assert d[4] == "ISA here only: amx_bf16, amx_int8, amx_tile, avx512_fp16, avx_vnni"


def _meta(fp=None, cpu="AMD EPYC", **kw):
    host = {"cpu": cpu} | ({"cpu_fingerprint": fp} if fp else {})
    return {"device": "host", "runtime": "litert", "threads": 1, "precision": "float32", "host": host, **kw}


def test_cpu_status():
    assert cpu_status(_meta(AMD), AMD) == SAME
    assert cpu_status(_meta(AMD), INTEL) == OTHER
    assert cpu_status(_meta(), AMD) == UNKNOWN  # the name matches, the ISA set is not recorded
    assert cpu_status(_meta(), INTEL) == OTHER  # an older table's recorded name is not this CPU's
    assert cpu_status({"device": "pixel1"}, INTEL) == "not-host"


def test_cpu_warning_names_both_cpus_and_the_fix():
    assert cpu_warning(_meta(AMD), AMD, "t.json") is None
    w = cpu_warning(_meta(AMD, precision="int8"), INTEL, "t.json")
    assert "\n" not in w and "another CPU" in w and "Zen 4" in w and "Sapphire Rapids" in w
    assert w.endswith("nse-hw profile --device host --runtime litert --space nse27-proxyless224 --precision int8 "
                      "--quick")
    assert "does not record" in cpu_warning(_meta(), AMD, "t.json")
    assert cpu_warning({"device": "host", "runtime": "litert"}, AMD, "t.json") is None  # hand-made: no host record


def test_build_hint():
    assert build_hint({"runtime": "onnxruntime", "threads": 2, "spaces": ["tiny"]}) == \
        "nse-hw profile --device host --runtime onnxruntime --space tiny --threads 2 --quick"
    assert build_hint({"runtime": "litert", "kernels": "builtin", "precision": "int8"}).endswith(
        "--precision int8 --kernels builtin --quick")


def test_hex_and_missing_fields():
    fp = parse_cpuinfo("processor : 0\nvendor_id : X\nmodel : 0x8f\ncpu family : 08\n")
    assert (fp["model"], fp["family"], fp["isa"], fp["model_name"]) == (143, 8, [], "unknown")


def test_this_cpu_and_governor(tmp_path):
    fp = this_cpu()
    assert fp["vendor"] and isinstance(fp["isa"], list) and same_cpu(fp, this_cpu())
    assert read_governor(tmp_path) is None
    (tmp_path / "cpu0" / "cpufreq").mkdir(parents=True)
    (tmp_path / "cpu0" / "cpufreq" / "scaling_governor").write_text("powersave\n")
    assert read_governor(tmp_path) == "powersave"
