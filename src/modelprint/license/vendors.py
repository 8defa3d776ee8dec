"""Who a piece of text points to: model vendors, license ids, license titles, copyright lines.

A *vendor* is the organisation a license or copyright belongs to, by a short id (``alibaba``,
``meta``, ``google`` ...). Apache-2.0 and MIT belong to nobody (vendor ``None``): carrying
them says nothing about where a model came from.

``huggingface`` is special: its copyright appears in the header of almost every modelling file
of the ``transformers`` library, so it is marked as a *tooling* vendor whose copyright lines are
reported but are not, alone, a sign of where weights came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelprint.license.text import words


@dataclass(frozen=True)
class Vendor:
    id: str
    name: str
    pattern: re.Pattern[str]
    tooling: bool = False


def _v(vid: str, name: str, pattern: str, tooling: bool = False) -> Vendor:
    return Vendor(vid, name, re.compile(pattern, re.IGNORECASE), tooling)


#: Known vendors. Patterns run on copyright lines, organisation names, repository ids and URLs.
VENDORS: tuple[Vendor, ...] = (
    _v("alibaba", "Alibaba (Qwen)", r"alibaba|\bqwen|tongyi|通义|阿里"),
    _v("meta", "Meta", r"meta[\s-]*platforms|\bfacebook|\bmeta[\s-]*llama|\bmeta\s+ai\b|"
                       r"^\s*meta\s*$|\bllama[\s-]*[234]"),
    _v("google", "Google", r"\bgoogle|deepmind|\bgemma"),
    _v("microsoft", "Microsoft", r"microsoft|\bphi-?[1-4]\b"),
    _v("mistral", "Mistral AI", r"mistral|mixtral"),
    _v("deepseek", "DeepSeek", r"deepseek|深度求索"),
    _v("huawei", "Huawei", r"huawei|华为|\bpangu|盘古"),
    _v("nvidia", "NVIDIA", r"\bnvidia"),
    _v("openai", "OpenAI", r"\bopenai\b"),
    _v("zhipu", "Zhipu AI", r"zhipu|\bthudm\b|chatglm|智谱"),
    _v("01ai", "01.AI", r"\b01[.-]?ai\b|零一万物"),
    _v("baichuan", "Baichuan", r"baichuan|百川"),
    _v("internlm", "Shanghai AI Laboratory", r"internlm|shanghai\s+ai\s+lab|上海人工智能实验室"),
    _v("moonshot", "Moonshot AI", r"moonshot|月之暗面"),
    _v("tencent", "Tencent", r"tencent|腾讯|hunyuan"),
    _v("ibm", "IBM", r"\bibm\b|\bgranite\b"),
    _v("tii", "Technology Innovation Institute", r"technology\s+innovation\s+institute|tiiuae"),
    _v("allenai", "Allen Institute for AI", r"allen\s+institute|\ballenai\b|\bolmo\b"),
    _v("stabilityai", "Stability AI", r"stability\s*ai|stabilityai"),
    _v("eleutherai", "EleutherAI", r"eleutherai"),
    _v("bigscience", "BigScience", r"bigscience"),
    _v("huggingface", "Hugging Face", r"hugging\s*face|huggingfacetb", tooling=True),
)
_BY_ID = {v.id: v for v in VENDORS}


def vendor_name(vid: str | None) -> str:
    if vid is None:
        return "no vendor"
    v = _BY_ID.get(vid)
    return v.name if v else vid


def is_tooling(vid: str | None) -> bool:
    v = _BY_ID.get(vid or "")
    return bool(v and v.tooling)


def vendors_in(text: str) -> list[str]:
    """Vendor ids named in ``text``, in order of first appearance."""
    hits = []
    for v in VENDORS:
        m = v.pattern.search(text)
        if m:
            hits.append((m.start(), v.id))
    return [vid for _, vid in sorted(hits)]


def canonical_vendor(text: str | None) -> str | None:
    """A user-given or metadata vendor name (``"Qwen"``, ``"meta-llama"``, ``"alibaba"``)
    mapped to a vendor id; unknown names come back normalised so they still compare."""
    if not text:
        return None
    text = str(text).strip()
    if text.lower() in _BY_ID:
        return text.lower()
    found = vendors_in(text)
    if found:
        return found[0]
    return " ".join(words(text)) or None


# -- license ids (model-card ``license:``, GGUF ``general.license``, SPDX) ----------------------

#: Lower-cased license ids and the vendor and title they stand for.
LICENSE_IDS: dict[str, tuple[str | None, str]] = {
    "llama2": ("meta", "Llama 2 Community License"),
    "llama3": ("meta", "Meta Llama 3 Community License"),
    "llama3.1": ("meta", "Llama 3.1 Community License"),
    "llama3.2": ("meta", "Llama 3.2 Community License"),
    "llama3.3": ("meta", "Llama 3.3 Community License"),
    "llama4": ("meta", "Llama 4 Community License"),
    "gemma": ("google", "Gemma Terms of Use"),
    "tongyi-qianwen": ("alibaba", "Tongyi Qianwen License Agreement"),
    "tongyi-qianwen-research": ("alibaba", "Tongyi Qianwen Research License Agreement"),
    "qwen": ("alibaba", "Qwen License Agreement"),
    "qwen-research": ("alibaba", "Qwen Research License Agreement"),
    "deepseek": ("deepseek", "DeepSeek License Agreement"),
    "deepseek-license": ("deepseek", "DeepSeek License Agreement"),
    "mrl": ("mistral", "Mistral AI Research License"),
    "mistral-research": ("mistral", "Mistral AI Research License"),
    "mnpl": ("mistral", "Mistral AI Non-Production License"),
    "apache-2.0": (None, "Apache License 2.0"),
    "mit": (None, "MIT License"),
}


def license_id_info(lid: str) -> tuple[str | None, str]:
    """(vendor, title) for a license id; unknown ids keep their text and get a vendor only when
    they name one (``"qwen-2.5-license"`` -> alibaba)."""
    key = lid.strip().lower()
    if key in LICENSE_IDS:
        return LICENSE_IDS[key]
    found = vendors_in(key.replace("-", " "))
    return (found[0] if found else None), lid.strip()


# -- license titles mentioned in text -------------------------------------------------------------

#: (normalised word sequence, license id, title, vendor). A mention is weaker than the text.
TITLES: tuple[tuple[tuple[str, ...], str, str, str | None], ...] = tuple(
    (tuple(words(phrase)), lid, title, vendor)
    for phrase, lid, title, vendor in (
        ("Llama 2 Community License", "llama2", "Llama 2 Community License", "meta"),
        ("Llama 3 Community License", "llama3", "Meta Llama 3 Community License", "meta"),
        ("Llama 3.1 Community License", "llama3.1", "Llama 3.1 Community License", "meta"),
        ("Llama 3.2 Community License", "llama3.2", "Llama 3.2 Community License", "meta"),
        ("Llama 3.3 Community License", "llama3.3", "Llama 3.3 Community License", "meta"),
        ("Llama 4 Community License", "llama4", "Llama 4 Community License", "meta"),
        ("Tongyi Qianwen License Agreement", "tongyi-qianwen",
         "Tongyi Qianwen License Agreement", "alibaba"),
        ("Tongyi Qianwen Research License Agreement", "tongyi-qianwen-research",
         "Tongyi Qianwen Research License Agreement", "alibaba"),
        ("Qwen License Agreement", "qwen", "Qwen License Agreement", "alibaba"),
        ("Qwen Research License Agreement", "qwen-research", "Qwen Research License Agreement",
         "alibaba"),
        ("Gemma Terms of Use", "gemma", "Gemma Terms of Use", "google"),
        ("Mistral AI Research License", "mrl", "Mistral AI Research License", "mistral"),
        ("Mistral AI Non-Production License", "mnpl", "Mistral AI Non-Production License",
         "mistral"),
        ("DeepSeek License Agreement", "deepseek", "DeepSeek License Agreement", "deepseek"),
    )
)


def title_mentions(line: str) -> list[tuple[str, str, str | None]]:
    """(license id, title, vendor) of every known license title named in one line."""
    ws = words(line)
    if not ws:
        return []
    out = []
    for phrase, lid, title, vendor in TITLES:
        n = len(phrase)
        if any(tuple(ws[i:i + n]) == phrase for i in range(len(ws) - n + 1)):
            out.append((lid, title, vendor))
    return out


# -- copyright lines ------------------------------------------------------------------------------

_YEAR = r"(?:19|20)\d{2}(?:\s*[-–,/]\s*(?:(?:19|20)?\d{2}|present))*"
_COPYRIGHT = re.compile(
    r"(?:\bcopyright\b\s*(?:\(c\)|©)?\s*(?:" + _YEAR + r")?|©\s*(?:" + _YEAR + r")?|"
    r"\(c\)\s*" + _YEAR + r")[\s,.:]*(?P<holder>.*)",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\(c\)|©|\b(?:19|20)\d{2}\b|all rights reserved", re.IGNORECASE)
_C_YEAR = re.compile(r"\(c\)\s*(?:19|20)\d{2}", re.IGNORECASE)
_LEAD = re.compile(r"^[\s#/*;!\-<>'\"%]*")


def copyright_holder(line: str) -> str | None:
    """The holder named by a copyright notice line, or None when the line is not one.

    A notice is "Copyright"/"©"/"(c)" followed by a year, "(c)" or "©"; a bare "Copyright" at
    the start of a line counts only when a known vendor follows. So prose such as "grant of
    copyright license" or the Apache template "Copyright [yyyy] [name of copyright owner]" is
    not taken for a notice."""
    if len(line) > 400:
        return None
    if "copyright" not in line.lower() and "©" not in line and not _C_YEAR.search(line):
        return None
    stripped = _LEAD.sub("", line)
    m = _COPYRIGHT.search(stripped)
    if not m:
        return None
    prefix = stripped[m.start():m.start("holder")]
    holder = m.group("holder").strip(" .,;:*#/-\"'")
    if not holder or "name of copyright owner" in holder.lower():
        return None
    if not _MARKER.search(prefix) and (m.start() != 0 or not vendors_in(holder)):
        return None
    return holder
