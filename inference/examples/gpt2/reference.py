#!/usr/bin/python3
"""reference: a numpy GPT-2, the independent reference for gpt2-server.

Loads a model directory in the Hugging Face format (config.json,
model.safetensors, vocab.json, merges.txt), parsing safetensors itself,
tokenizes like Hugging Face's GPT2Tokenizer, and runs the forward pass in
fp32 (fp16 and bf16 weights are widened to fp32 once, at load).

    import reference
    m = reference.load("path/to/model")
    ids = m.tokenizer.encode("Hello world")
    logits = m.logits(ids)              # [vocab] at the last position
    out = m.generate(ids, 20)           # greedy: the new ids

As a program:

    reference.py logits   MODEL_DIR PROMPT [--npy FILE]
    reference.py generate MODEL_DIR PROMPT N
    reference.py encode   MODEL_DIR TEXT
    reference.py decode   MODEL_DIR ID...

Each prints one JSON object.  The rules a reimplementation must follow to
give the same numbers and the same tokens:

- Tokenizer: the GPT-2 pre-tokenizer pattern below (with the `regex`
  module when it is there, else an equivalent written with str methods:
  \\s is str.isspace() less U+001C..U+001F, \\p{L} and \\p{N} are the
  Unicode general categories L* and N*); each piece's UTF-8 bytes mapped
  through bytes_to_unicode(); BPE merging the pair of lowest rank first,
  every occurrence left to right; "<|endoftext|>" in the text is the
  special token.  decode() maps back and decodes UTF-8 with errors
  replaced, with no clean-up of spaces.
- Forward: h = wte[ids] + wpe[positions]; per layer
  h += attn(ln_1(h)), h += mlp(ln_2(h)); logits = ln_f(h) @ wte^T (or
  lm_head.weight^T when the embeddings are not tied).  Conv1D weights are
  [in, out]: y = x @ W + b.  Layer norm: biased variance, eps from the
  config.  Attention: causal, scaled by 1/sqrt(head_dim), softmax over
  the keys.  gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
- Greedy: the argmax of the logits, the lowest id on a tie; generation
  stops after N tokens or when eos_token_id comes (which is not returned).
  An empty prompt starts from bos_token_id.
"""

import json
import math
import mmap
import os
import sys
import unicodedata

import numpy as np

try:
    import regex as _regex
except ImportError:  # pragma: no cover - Debian: python3-regex
    _regex = None

__all__ = ["load", "Model", "Tokenizer", "read_safetensors",
           "bytes_to_unicode", "pretokenize", "pretokenize_str"]

EOT = "<|endoftext|>"
PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+"""
           r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
# The largest safetensors header this reader takes (the format's own
# reference implementation refuses more than 100 MB).
HEADER_MAX = 100 * 1000 * 1000


# --- tokenizer ---------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's map of the 256 bytes to printable characters: the printable
    Latin-1 bytes stand for themselves, the others (controls, space, ...)
    for U+0100 onwards, in byte order."""
    bs = (list(range(ord("!"), ord("~") + 1)) +
          list(range(ord("\u00a1"), ord("\u00ac") + 1)) +
          list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _is_space(c):
    # The regex module's \s: Unicode White_Space, which str.isspace()
    # extends with the four information separators.
    return c.isspace() and not "\x1c" <= c <= "\x1f"


def _is_letter(c):
    return unicodedata.category(c)[0] == "L"


def _is_number(c):
    return unicodedata.category(c)[0] == "N"


def pretokenize_str(text):
    """The GPT-2 pattern's matches, found with str methods only."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        # 's 't 're 've 'm 'll 'd
        if c == "'" and i + 1 < n:
            hit = None
            for s in ("s", "t", "re", "ve", "m", "ll", "d"):
                if text.startswith(s, i + 1):
                    hit = s
                    break
            if hit is not None:
                out.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        # ' ?' then a run of one class
        j = i + 1 if c == " " and i + 1 < n else i
        d = text[j]
        if j > i or not _is_space(d):
            if _is_letter(d):
                cls = _is_letter
            elif _is_number(d):
                cls = _is_number
            elif not _is_space(d):
                def cls(x):
                    return not (_is_space(x) or _is_letter(x) or
                                _is_number(x))
            else:
                cls = None
            if cls is not None:
                k = j + 1
                while k < n and cls(text[k]):
                    k += 1
                out.append(text[i:k])
                i = k
                continue
        # whitespace: \s+(?!\S), else \s+
        k = i + 1
        while k < n and _is_space(text[k]):
            k += 1
        if k < n and k - 1 > i:
            k -= 1      # leave the last space to the word after it
        out.append(text[i:k])
        i = k
    return out


if _regex is not None:
    _PAT = _regex.compile(PATTERN)

    def pretokenize(text):
        """The GPT-2 pattern's matches (the regex module)."""
        return _PAT.findall(text)
else:
    pretokenize = pretokenize_str


class Tokenizer:
    """GPT-2's byte-level BPE, from vocab.json and merges.txt."""

    def __init__(self, vocab, merges, eot=EOT):
        self.encoder = dict(vocab)
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.eot = eot
        self.eot_id = self.encoder.get(eot)
        self.cache = {}

    @classmethod
    def from_dir(cls, d):
        with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
            for n, line in enumerate(f):
                line = line.rstrip("\n")
                if n == 0 and line.startswith("#version"):
                    continue
                if not line:
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError("merges.txt line %d: not two tokens"
                                     % (n + 1))
                merges.append(parts)
        return cls(vocab, merges)

    def bpe(self, word):
        """The BPE pieces of one pre-token (in byte-encoded characters)."""
        hit = self.cache.get(word)
        if hit is not None:
            return hit
        parts = list(word)
        while len(parts) > 1:
            best, rank = None, None
            for p in zip(parts, parts[1:]):
                r = self.ranks.get(p)
                if r is not None and (rank is None or r < rank):
                    best, rank = p, r
            if best is None:
                break
            a, b = best
            merged = []
            i = 0
            while i < len(parts):
                if (i + 1 < len(parts) and parts[i] == a and
                        parts[i + 1] == b):
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(self.cache) < 100000:
            self.cache[word] = parts
        return parts

    def _encode_plain(self, text, ids):
        for piece in pretokenize(text):
            word = "".join(self.byte_encoder[b]
                           for b in piece.encode("utf-8"))
            for tok in self.bpe(word):
                ids.append(self.encoder[tok])

    def encode(self, text):
        """Token ids of text; "<|endoftext|>" is the special token."""
        ids = []
        chunks = text.split(self.eot) if self.eot_id is not None else [text]
        for n, chunk in enumerate(chunks):
            if n > 0:
                ids.append(self.eot_id)
            if chunk:
                self._encode_plain(chunk, ids)
        return ids

    def decode(self, ids):
        """The text of ids: UTF-8, invalid sequences replaced."""
        s = "".join(self.decoder[int(i)] for i in ids)
        out = bytearray()
        for ch in s:
            b = self.byte_decoder.get(ch)
            if b is None:  # a special token's own characters
                out += ch.encode("utf-8")
            else:
                out.append(b)
        return out.decode("utf-8", errors="replace")

    def __len__(self):
        return len(self.encoder)


# --- safetensors -------------------------------------------------------------

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
           "BF16": np.dtype("<u2"), "F64": np.dtype("<f8"),
           "I64": np.dtype("<i8"), "I32": np.dtype("<i4"),
           "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
           "U8": np.dtype("u1"), "BOOL": np.dtype("?")}


def read_safetensors(path):
    """(tensors, metadata): each tensor a read-only numpy view of the
    file's mapping (BF16 as uint16: see to_f32), after checking the header:
    its size, each entry's dtype, shape and offsets inside the file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ValueError("%s: %d bytes, too short for safetensors"
                             % (path, size))
        n = int.from_bytes(f.read(8), "little")
        if n > HEADER_MAX or 8 + n > size:
            raise ValueError("%s: header of %d bytes in a %d-byte file"
                             % (path, n, size))
        header = json.loads(f.read(n).decode("utf-8"))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if not isinstance(header, dict):
        raise ValueError("%s: the header is not a JSON object" % path)
    meta = header.pop("__metadata__", None) or {}
    data = 8 + n
    tensors = {}
    for name, e in header.items():
        try:
            dt = _DTYPES[e["dtype"]]
            shape = tuple(int(x) for x in e["shape"])
            begin, end = (int(x) for x in e["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("%s: tensor %s: bad or unknown entry %r"
                             % (path, name, e)) from None
        count = math.prod(shape)
        if (min(shape, default=0) < 0 or not 0 <= begin <= end or
                data + end > size or end - begin != count * dt.itemsize):
            raise ValueError("%s: tensor %s: offsets %d..%d do not hold "
                             "%s %s in a %d-byte data section"
                             % (path, name, begin, end, e["dtype"],
                                list(shape), size - data))
        a = np.frombuffer(mm, dtype=dt, count=count, offset=data + begin)
        a = a.reshape(shape)
        tensors[name] = (e["dtype"], a)
    return tensors, meta


def to_f32(dtype, a):
    """A tensor as fp32: F32 as it is (the mapping itself), F16 and BF16
    widened (BF16 is the high half of an fp32)."""
    if dtype == "F32":
        return a
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


# --- the model ---------------------------------------------------------------

def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.float32(math.sqrt(2.0 / math.pi)) *
                                    (x + np.float32(0.044715) * x * x * x)))


def layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=-1, keepdims=True)
    return d / np.sqrt(var + np.float32(eps)) * w + b


class Model:
    """A loaded GPT-2: config, tokenizer and fp32 weights."""

    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
            self.config = c = json.load(f)
        self.n_layer = int(c["n_layer"])
        self.n_head = int(c["n_head"])
        self.n_embd = int(c["n_embd"])
        self.vocab_size = int(c["vocab_size"])
        self.n_positions = int(c.get("n_positions", c.get("n_ctx", 1024)))
        self.eps = float(c.get("layer_norm_epsilon", 1e-5))
        act = c.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError("activation_function %r is not supported" % act)
        if self.n_embd % self.n_head:
            raise ValueError("n_embd %d is not a multiple of n_head %d"
                             % (self.n_embd, self.n_head))
        self.tied = bool(c.get("tie_word_embeddings", True))
        self.bos = c.get("bos_token_id")
        self.eos = c.get("eos_token_id")
        self.tokenizer = Tokenizer.from_dir(d)
        raw, self.metadata = read_safetensors(
            os.path.join(d, "model.safetensors"))
        self.dtype = sorted({dt for dt, _ in raw.values()})
        self.prefix = ("transformer." if "transformer.wte.weight" in raw
                       else "")
        E, V, P = self.n_embd, self.vocab_size, self.n_positions

        def get(name, shape, prefix=None):
            full = (self.prefix if prefix is None else prefix) + name
            if full not in raw:
                raise ValueError("model.safetensors has no tensor %s" % full)
            dt, a = raw[full]
            if dt not in ("F32", "F16", "BF16"):
                raise ValueError("tensor %s: dtype %s is not F32, F16 or "
                                 "BF16" % (full, dt))
            if a.shape != tuple(shape):
                raise ValueError("tensor %s: shape %s, want %s"
                                 % (full, list(a.shape), list(shape)))
            return to_f32(dt, a)

        self.wte = get("wte.weight", (V, E))
        self.wpe = get("wpe.weight", (P, E))
        self.layers = []
        for i in range(self.n_layer):
            h = "h.%d." % i
            self.layers.append({
                "ln_1.w": get(h + "ln_1.weight", (E,)),
                "ln_1.b": get(h + "ln_1.bias", (E,)),
                "attn.w": get(h + "attn.c_attn.weight", (E, 3 * E)),
                "attn.b": get(h + "attn.c_attn.bias", (3 * E,)),
                "proj.w": get(h + "attn.c_proj.weight", (E, E)),
                "proj.b": get(h + "attn.c_proj.bias", (E,)),
                "ln_2.w": get(h + "ln_2.weight", (E,)),
                "ln_2.b": get(h + "ln_2.bias", (E,)),
                "fc.w": get(h + "mlp.c_fc.weight", (E, 4 * E)),
                "fc.b": get(h + "mlp.c_fc.bias", (4 * E,)),
                "mproj.w": get(h + "mlp.c_proj.weight", (4 * E, E)),
                "mproj.b": get(h + "mlp.c_proj.bias", (E,)),
            })
        self.ln_f_w = get("ln_f.weight", (E,))
        self.ln_f_b = get("ln_f.bias", (E,))
        if self.tied:
            self.lm_head = self.wte
        else:
            self.lm_head = get("lm_head.weight", (V, E), prefix="")
        if len(self.tokenizer) > V:
            raise ValueError("the vocabulary has %d tokens, vocab_size is %d"
                             % (len(self.tokenizer), V))

    def forward(self, ids, past=None):
        """Logits [len(ids), vocab] for ids following past (a list of
        (k, v) per layer, [n_head, t, head_dim]); returns (logits, past)."""
        ids = np.asarray(ids, dtype=np.int64)
        start = 0 if past is None else past[0][0].shape[1]
        T = len(ids)
        if T == 0:
            raise ValueError("no tokens")
        if start + T > self.n_positions:
            raise ValueError("%d tokens: the model takes at most %d"
                             % (start + T, self.n_positions))
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError("a token id outside the vocabulary")
        E, H = self.n_embd, self.n_head
        D = E // H
        scale = np.float32(1.0 / math.sqrt(D))
        x = self.wte[ids] + self.wpe[start:start + T]
        # Query t (absolute start + t) sees keys 0..start + t.
        mask = (np.arange(start + T)[None, :] >
                (start + np.arange(T))[:, None])
        new_past = []
        for i, L in enumerate(self.layers):
            a = layer_norm(x, L["ln_1.w"], L["ln_1.b"], self.eps)
            qkv = a @ L["attn.w"] + L["attn.b"]
            q, k, v = (qkv[:, j * E:(j + 1) * E].reshape(T, H, D)
                       .transpose(1, 0, 2) for j in range(3))
            if past is not None:
                k = np.concatenate([past[i][0], k], axis=1)
                v = np.concatenate([past[i][1], v], axis=1)
            new_past.append((k, v))
            s = (q @ k.transpose(0, 2, 1)) * scale
            s = np.where(mask[None], np.float32(-np.inf), s)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s = s / s.sum(axis=-1, keepdims=True)
            o = (s @ v).transpose(1, 0, 2).reshape(T, E)
            x = x + (o @ L["proj.w"] + L["proj.b"])
            m = layer_norm(x, L["ln_2.w"], L["ln_2.b"], self.eps)
            m = gelu_new(m @ L["fc.w"] + L["fc.b"])
            x = x + (m @ L["mproj.w"] + L["mproj.b"])
        x = layer_norm(x, self.ln_f_w, self.ln_f_b, self.eps)
        return (x @ self.lm_head.T).astype(np.float32), new_past

    def start_ids(self, ids):
        ids = list(ids)
        if not ids:
            if self.bos is None:
                raise ValueError("an empty prompt and no bos_token_id")
            ids = [int(self.bos)]
        return ids

    def logits(self, ids):
        """The logits at the last position of ids (an empty list: bos)."""
        return self.forward(self.start_ids(ids))[0][-1]

    def generate(self, ids, n):
        """Greedy: up to n new ids after ids, stopping before eos."""
        ids = self.start_ids(ids)
        if len(ids) + n > self.n_positions:
            raise ValueError("%d prompt tokens and %d new: the model takes "
                             "at most %d" % (len(ids), n, self.n_positions))
        out = []
        if n <= 0:
            return out
        logits, past = self.forward(ids)
        while True:
            nxt = int(np.argmax(logits[-1]))
            if self.eos is not None and nxt == int(self.eos):
                break
            out.append(nxt)
            if len(out) >= n:
                break
            logits, past = self.forward([nxt], past)
        return out


def load(d):
    """The model in directory d."""
    return Model(d)


# --- the program -------------------------------------------------------------

def _usage():
    sys.stderr.write(
        "usage: reference.py logits MODEL_DIR PROMPT [--npy FILE]\n"
        "       reference.py generate MODEL_DIR PROMPT N\n"
        "       reference.py encode MODEL_DIR TEXT\n"
        "       reference.py decode MODEL_DIR ID...\n")
    return 2


def main(argv):
    if len(argv) < 3:
        return _usage()
    cmd, d, rest = argv[1], argv[2], argv[3:]
    if cmd == "encode" and len(rest) == 1:
        tok = Tokenizer.from_dir(d)
        ids = tok.encode(rest[0])
        print(json.dumps({"ids": ids, "tokens": [tok.decoder[i] for i in ids],
                          "roundtrip": tok.decode(ids) == rest[0]}))
        return 0
    if cmd == "decode":
        tok = Tokenizer.from_dir(d)
        print(json.dumps({"text": tok.decode([int(x) for x in rest])}))
        return 0
    if cmd == "logits" and len(rest) in (1, 3):
        npy = None
        if len(rest) == 3:
            if rest[1] != "--npy":
                return _usage()
            npy = rest[2]
        m = load(d)
        ids = m.tokenizer.encode(rest[0])
        logits = m.logits(ids)
        r = {"ids": ids, "argmax": int(np.argmax(logits))}
        if npy:
            np.save(npy, logits)
            r["npy"] = npy
        else:
            r["logits"] = [float(x) for x in logits]
        print(json.dumps(r))
        return 0
    if cmd == "generate" and len(rest) == 2:
        m = load(d)
        ids = m.tokenizer.encode(rest[0])
        out = m.generate(ids, int(rest[1]))
        print(json.dumps({"prompt_ids": ids, "ids": out,
                          "text": m.tokenizer.decode(out)},
                         ensure_ascii=False))
        return 0
    return _usage()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        sys.stderr.write("reference.py: %s\n" % e)
        sys.exit(1)
