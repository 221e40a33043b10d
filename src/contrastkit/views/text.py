"""Text and code views for contrastive learning (SimCSE, Contriever, CoCoSoDa).

Token views act on a tokenizer batch, the dict a Hugging Face tokenizer returns:
``{"input_ids": [B, L], "attention_mask": [B, L]}`` with right padding and the
BERT layout ``[CLS] content ... [SEP] [PAD] ...``. Position 0 of every row and
its last real position (its *specials*) are kept as they are; a view changes the
*content* tokens between them only. Every view returns a new dict of the same
form (never touching the input's tensors), re-packs kept tokens to the left,
fills the rest with ``pad_token_id`` and trims columns that became padding in
every row, so ``L`` may shrink. Other ``[B, L]`` tensors of the batch (e.g.
``token_type_ids``) travel with their tokens; their padding becomes 0.

Every view keeps at least one content token in a row that had one; a row with no
content (``[CLS] [SEP]``) is returned as it came. Random numbers are drawn with
batched tensor ops (no Python loop over rows) from torch's global RNG or from a
``torch.Generator`` given at construction or at call (the call's wins).

What is here:

* :class:`IndependentCrop` (Contriever's independent cropping) and
  :class:`WordDeletion` (Contriever's token deletion);
* :class:`TokenMask` (CoCoSoDa's dynamic masking);
* :class:`TokenTypeReplacement` (CoCoSoDa's replace-by-type, on source strings
  before tokenisation);
* :class:`Compose` chains token views; :func:`build_text_views` builds a named
  preset's pair of views (``"dropout"``, ``"contriever"``, ``"cocosoda"``,
  ``"crop"``).
"""

from __future__ import annotations

import io
import keyword
import math
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from contrastkit.utils.checks import unknown_name_error
from contrastkit.utils.registry import Registry

__all__ = [
    "TEXT_VIEW_PRESETS",
    "Compose",
    "IndependentCrop",
    "TokenMask",
    "TokenTypeReplacement",
    "WordDeletion",
    "build_text_views",
    "text_view_preset_names",
]

TokenBatch = dict[str, torch.Tensor]

_REQUIRED_KEYS = ("input_ids", "attention_mask")


# -- checks and random numbers ----------------------------------------------------------


def _check_ratio_range(owner: str, min_ratio: float, max_ratio: float) -> tuple[float, float]:
    for name, value in (("min_ratio", min_ratio), ("max_ratio", max_ratio)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}: expected {name} in [0, 1], got {value!r}")
    if min_ratio > max_ratio:
        raise ValueError(f"{owner}: expected min_ratio <= max_ratio, got {min_ratio!r} > {max_ratio!r}")
    return float(min_ratio), float(max_ratio)


def _check_token_id(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: expected {name} as an int >= 0, got {value!r}")
    return value


def _check_generator(owner: str, generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{owner}: expected generator to be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def _check_batch(owner: str, batch: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a tokenizer batch; return ``(input_ids, attention_mask as bool, lengths [B])``."""
    if not isinstance(batch, Mapping):
        raise ValueError(
            f"{owner}: expected a dict with 'input_ids' and 'attention_mask' [B, L], got {type(batch).__name__}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in batch]
    if missing:
        raise ValueError(f"{owner}: expected keys {list(_REQUIRED_KEYS)}, missing {missing} (got {sorted(batch)})")
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    for key, tensor in (("input_ids", input_ids), ("attention_mask", attention_mask)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{owner}: expected {key} as a tensor [B, L], got {got}")
        if tensor.is_floating_point() or tensor.is_complex():
            raise ValueError(f"{owner}: expected {key} with an integer (or bool) dtype, got {tensor.dtype}")
    if input_ids.shape != attention_mask.shape:
        raise ValueError(
            f"{owner}: expected input_ids and attention_mask of the same shape, "
            f"got {tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    for key, tensor in batch.items():
        if key in _REQUIRED_KEYS:
            continue
        if not isinstance(tensor, torch.Tensor) or tensor.shape != input_ids.shape:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(
                f"{owner}: expected every other entry to be a [B, L] = {tuple(input_ids.shape)} tensor "
                f"that travels with its tokens, got {key!r}: {got}"
            )
    if attention_mask.dtype != torch.bool and ((attention_mask != 0) & (attention_mask != 1)).any():
        raise ValueError(f"{owner}: expected attention_mask of 0/1 values, got other values")
    real = attention_mask.bool()
    if real.shape[1] > 1 and (real[:, 1:] & ~real[:, :-1]).any():
        raise ValueError(
            f"{owner}: expected right padding (attention_mask 1...1 0...0 in every row), got a 0 before a 1"
        )
    lengths = real.sum(dim=1)
    if real.shape[0] > 0 and int(lengths.min()) < 2:
        raise ValueError(
            f"{owner}: expected every row to hold at least [CLS] and [SEP] (2 real tokens), "
            f"got a row with {int(lengths.min())}"
        )
    return input_ids, real, lengths


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) float32 of ``shape`` on ``device``, from ``generator`` if given."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _uniform(
    low: float, high: float, rows: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """One float64 draw per row, uniform in ``[low, high]``."""
    return low + (high - low) * _rand((rows,), generator, device).double()


def _below(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-entry integers uniform in ``[0, high)`` for an int64 tensor ``high`` (0 where ``high <= 0``)."""
    draw = _rand(tuple(high.shape), generator, high.device)
    return torch.minimum((draw * high).long(), high - 1).clamp(min=0)


def _content_mask(real: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` bool: the positions strictly between [CLS] (0) and [SEP] (``length - 1``)."""
    positions = torch.arange(real.shape[1], device=real.device)
    return (positions > 0) & (positions < (lengths - 1).unsqueeze(1))


def _repack(batch: Mapping[str, torch.Tensor], keep: torch.Tensor, pad_token_id: int) -> TokenBatch:
    """Keep the positions where ``keep [B, L]`` is true, in order, left-aligned; pad the rest.

    A stable sort of "dropped" flags moves every kept position to the front of its
    row without changing their order (one gather for all rows); the columns past
    the longest kept row are trimmed.
    """
    new_lengths = keep.sum(dim=1)
    width = int(new_lengths.max()) if keep.shape[0] > 0 else keep.shape[1]
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    filled = torch.arange(width, device=keep.device) < new_lengths.unsqueeze(1)
    out: TokenBatch = {}
    for key, tensor in batch.items():
        gathered = tensor.gather(1, order)
        if key == "input_ids":
            out[key] = gathered.masked_fill(~filled, pad_token_id)
        elif key == "attention_mask":
            out[key] = filled.to(tensor.dtype)
        else:
            out[key] = gathered.masked_fill(~filled, 0)
    return out


def _trim(batch: Mapping[str, torch.Tensor], real: torch.Tensor) -> TokenBatch:
    """A new dict of new tensors without the trailing columns that are padding in every row."""
    width = int(real.sum(dim=1).max()) if real.shape[0] > 0 else real.shape[1]
    return {key: tensor[:, :width].clone() for key, tensor in batch.items()}


# -- token views -------------------------------------------------------------------------


class _TokenView(nn.Module):
    """Base of the token views: input checks, the generator, the call signature."""

    def __init__(self, *, pad_token_id: int = 0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.pad_token_id = _check_token_id(owner, "pad_token_id", pad_token_id)
        self.generator = _check_generator(owner, generator)

    def _augment(
        self,
        batch: Mapping[str, torch.Tensor],
        real: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None,
    ) -> TokenBatch:
        raise NotImplementedError

    def forward(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None) -> TokenBatch:
        """Return one random view of every row of a tokenizer batch.

        Args:
            batch: ``{"input_ids": [B, L], "attention_mask": [B, L]}`` (right padding,
                ``[CLS] ... [SEP]`` rows), optionally with more ``[B, L]`` tensors.
            generator: optional ``torch.Generator`` for this call; by default the
                one given at construction, else torch's global RNG.

        Returns:
            A new dict with the same keys, dtypes and device, ``[B, L']`` with ``L' <= L``.

        Raises:
            ValueError: missing keys, wrong shapes or dtypes, left padding, or a
                row with fewer than 2 real tokens.
        """
        owner = type(self).__name__
        _, real, lengths = _check_batch(owner, batch)
        generator = _check_generator(owner, generator) or self.generator
        if real.shape[0] == 0:
            return dict(batch)
        return self._augment(batch, real, lengths, generator)


class IndependentCrop(_TokenView):
    """Contriever's independent cropping: keep one random contiguous span of content.

    Izacard et al., TMLR 2022, "Unsupervised Dense Information Retrieval with
    Contrastive Learning", Section 3.2 (``randomcrop`` in facebookresearch/contriever).
    For a row with ``c`` content tokens, draw ``r ~ U[min_ratio, max_ratio]`` and
    keep ``n = max(1, floor(r * c))`` consecutive content tokens starting at a
    uniform position in ``[0, c - n]``, re-packed as ``[CLS] span [SEP]``. Two calls
    give two independent crops of the same document: Contriever's positive pair.

    Args:
        min_ratio: smallest span length as a fraction of the content (default 0.1).
        max_ratio: largest span length as a fraction of the content (default 0.5).
        pad_token_id: id written into padding (default 0, BERT's ``[PAD]``).
        generator: optional ``torch.Generator``.

    Example:
        >>> crop = IndependentCrop(0.1, 0.5)
        >>> ids = torch.tensor([[101, 5, 6, 7, 8, 102]])
        >>> view = crop({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        >>> view["input_ids"]  # e.g. tensor([[101, 7, 8, 102]])
    """

    def __init__(
        self,
        min_ratio: float = 0.1,
        max_ratio: float = 0.5,
        *,
        pad_token_id: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(pad_token_id=pad_token_id, generator=generator)
        self.min_ratio, self.max_ratio = _check_ratio_range(type(self).__name__, min_ratio, max_ratio)

    def extra_repr(self) -> str:
        return f"min_ratio={self.min_ratio}, max_ratio={self.max_ratio}"

    def _augment(self, batch, real, lengths, generator):  # noqa: ANN001, ANN202 - see _TokenView
        content_lengths = lengths - 2
        ratios = _uniform(self.min_ratio, self.max_ratio, real.shape[0], generator, real.device)
        # Contriever floors the span length (int(len * ratio)); one token at least.
        span = torch.minimum((ratios * content_lengths).floor().long().clamp(min=1), content_lengths)
        start = 1 + _below(content_lengths - span + 1, generator)  # first content position is 1
        positions = torch.arange(real.shape[1], device=real.device)
        in_span = (positions >= start.unsqueeze(1)) & (positions < (start + span).unsqueeze(1))
        specials = (positions == 0) | (positions == (lengths - 1).unsqueeze(1))
        return _repack(batch, in_span | specials, self.pad_token_id)


class WordDeletion(_TokenView):
    """Delete each content token independently with probability ``p`` (Contriever's ``deleteword``).

    Izacard et al., TMLR 2022, Section 3.2 ("token deletion", p = 0.1 with
    cropping). Tokens are the tokenizer's pieces (sub-words for WordPiece), as in
    the Contriever code. Survivors keep their order and are re-packed to the left;
    a row that would lose every content token keeps one, chosen uniformly.

    Args:
        p: deletion probability per content token (default 0.1).
        pad_token_id: id written into padding (default 0).
        generator: optional ``torch.Generator``.

    Example:
        >>> delete = WordDeletion(0.1)
        >>> view = delete({"input_ids": ids, "attention_mask": mask})
    """

    def __init__(self, p: float = 0.1, *, pad_token_id: int = 0, generator: torch.Generator | None = None) -> None:
        super().__init__(pad_token_id=pad_token_id, generator=generator)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"WordDeletion: expected p in [0, 1], got {p!r}")
        self.p = float(p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def _augment(self, batch, real, lengths, generator):  # noqa: ANN001, ANN202 - see _TokenView
        content = _content_mask(real, lengths)
        survives = content & (_rand(tuple(real.shape), generator, real.device) >= self.p)
        content_lengths = lengths - 2
        emptied = (survives.sum(dim=1) == 0) & (content_lengths > 0)
        # Rescue one uniformly chosen content token in rows that lost them all.
        rescued = 1 + _below(content_lengths, generator)
        rescue = torch.zeros_like(survives).scatter_(1, rescued.unsqueeze(1), emptied.unsqueeze(1))
        positions = torch.arange(real.shape[1], device=real.device)
        specials = (positions == 0) | (positions == (lengths - 1).unsqueeze(1))
        return _repack(batch, survives | rescue | specials, self.pad_token_id)


class TokenMask(_TokenView):
    """CoCoSoDa's dynamic masking: replace a random per-row fraction of content tokens by ``[MASK]``.

    Shi et al., ICSE 2023, "CoCoSoDa: Effective Contrastive Learning for Code
    Search", Section 3.2 (soft data augmentation, dynamic masking). For a row with
    ``c`` content tokens, draw ``r ~ U[min_ratio, max_ratio]`` and mask
    ``k = min(floor(r * c + 0.5), c - 1)`` content positions chosen uniformly
    without replacement (at least one original content token stays). The length
    of the row does not change.

    Args:
        min_ratio: smallest masked fraction (default 0.0).
        max_ratio: largest masked fraction (default 0.3; the paper's exact range
            is unverified).
        mask_token_id: the tokenizer's ``mask_token_id`` (required; 103 for BERT).
        pad_token_id: id of padding (default 0); used for trimming only.
        generator: optional ``torch.Generator``.

    Example:
        >>> mask = TokenMask(0.0, 0.3, mask_token_id=tokenizer.mask_token_id)
        >>> view = mask(tokenizer(texts, padding=True, return_tensors="pt"))
    """

    def __init__(
        self,
        min_ratio: float = 0.0,
        max_ratio: float = 0.3,
        *,
        mask_token_id: int | None = None,
        pad_token_id: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(pad_token_id=pad_token_id, generator=generator)
        owner = type(self).__name__
        self.min_ratio, self.max_ratio = _check_ratio_range(owner, min_ratio, max_ratio)
        self.mask_token_id = _check_token_id(owner, "mask_token_id (the tokenizer's [MASK] id)", mask_token_id)

    def extra_repr(self) -> str:
        return f"min_ratio={self.min_ratio}, max_ratio={self.max_ratio}, mask_token_id={self.mask_token_id}"

    def draw_mask(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw which positions to mask, without masking them.

        Args:
            batch: a tokenizer batch as for ``forward``.
            generator: optional ``torch.Generator`` for this call.

        Returns:
            ``(masked [B, L] bool, ratios [B] float64)``: the positions to replace
            and the fraction drawn for each row.
        """
        owner = type(self).__name__
        _, real, lengths = _check_batch(owner, batch)
        generator = _check_generator(owner, generator) or self.generator
        return self._draw(real, lengths, generator)

    def _draw(
        self, real: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        content = _content_mask(real, lengths)
        content_lengths = lengths - 2
        ratios = _uniform(self.min_ratio, self.max_ratio, real.shape[0], generator, real.device)
        counts = torch.minimum((ratios * content_lengths + 0.5).floor().long(), (content_lengths - 1).clamp(min=0))
        # A random score per content position (2 elsewhere, never chosen); the k
        # smallest scores of a row are k uniform positions without replacement.
        scores = _rand(tuple(real.shape), generator, real.device).masked_fill(~content, 2.0)
        ranks = torch.argsort(torch.argsort(scores, dim=1), dim=1)
        return content & (ranks < counts.unsqueeze(1)), ratios

    def _augment(self, batch, real, lengths, generator):  # noqa: ANN001, ANN202 - see _TokenView
        masked, _ = self._draw(real, lengths, generator)
        out = dict(batch)
        out["input_ids"] = batch["input_ids"].masked_fill(masked, self.mask_token_id)
        return _trim(out, real)


class Compose(nn.Module):
    """Apply token views one after the other; no views is the identity.

    The identity is SimCSE's view (Gao et al., EMNLP 2021): the two "views" are
    the same tokens, and the encoder's dropout makes the two embeddings differ.

    Args:
        views: token views (modules taking ``(batch, generator=None)``), in order.

    Example:
        >>> view = Compose([IndependentCrop(0.1, 0.5), WordDeletion(0.1)])
        >>> out = view({"input_ids": ids, "attention_mask": mask})
    """

    def __init__(self, views: Iterable[nn.Module] = ()) -> None:
        super().__init__()
        views = list(views)
        for view in views:
            if not isinstance(view, nn.Module):
                raise ValueError(f"Compose: expected token views (nn.Module), got {type(view).__name__}")
        self.views = nn.ModuleList(views)

    def forward(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None) -> TokenBatch:
        """Return ``batch`` through every view (a new dict; the input is not modified).

        Args:
            batch: a tokenizer batch (see :class:`IndependentCrop`).
            generator: optional ``torch.Generator`` passed to every view for this call.
        """
        _check_batch("Compose", batch)
        _check_generator("Compose", generator)
        out = dict(batch)
        for view in self.views:
            out = view(out, generator=generator)
        return out


# -- type replacement on source strings --------------------------------------------------

_TYPE_WORDS = {tokenize.NUMBER: "number", tokenize.STRING: "string", tokenize.OP: "operator"}
_NUMBER_WORD = re.compile(r"^[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?[jJ]?$")
_STRING_WORD = re.compile(r"""^[rRbBuUfF]{0,2}(['"]).*\1$""", re.DOTALL)


def _python_spans(text: str) -> list[tuple[int, int, str]] | None:
    """``(start, end, type word)`` of the NAME/NUMBER/STRING/OP tokens of ``text``; None if not Python."""
    line_starts = [0]
    for line in io.StringIO(text):
        line_starts.append(line_starts[-1] + len(line))
    spans = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.ERRORTOKEN:
                return None
            if token.type == tokenize.NAME:
                word = "keyword" if keyword.iskeyword(token.string) else "identifier"
            elif token.type in _TYPE_WORDS:
                word = _TYPE_WORDS[token.type]
            else:
                continue
            start = line_starts[token.start[0] - 1] + token.start[1]
            end = line_starts[token.end[0] - 1] + token.end[1]
            spans.append((start, end, word))
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        return None
    return spans


def _word_spans(text: str) -> list[tuple[int, int, str]]:
    """Whitespace-separated words with a guessed type word, for text that is not Python."""
    spans = []
    for match in re.finditer(r"\S+", text):
        word = match.group()
        if keyword.iskeyword(word):
            kind = "keyword"
        elif _NUMBER_WORD.match(word):
            kind = "number"
        elif _STRING_WORD.match(word):
            kind = "string"
        elif not any(char.isalnum() or char == "_" for char in word):
            kind = "operator"
        else:
            kind = "identifier"
        spans.append((match.start(), match.end(), kind))
    return spans


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _splice(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, word)`` span (sorted, disjoint) replaced by ``word``.

    A space is added where a type word would touch a letter, digit or underscore
    (``x.y`` with the dot replaced is ``x operator y``, not ``xoperatory``), so that
    the type word stays a separate word for the encoder's tokenizer.
    """
    pieces: list[str] = []
    cursor = 0
    for start, end, word in spans:
        before = text[cursor:start]
        previous = before[-1:] if before else (pieces[-1][-1:] if pieces and pieces[-1] else "")
        pieces += [before, " " + word if previous and _is_word_char(previous) else word]
        following = text[end : end + 1]
        if following and _is_word_char(following):
            pieces.append(" ")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


class TokenTypeReplacement:
    """CoCoSoDa's replace-by-type: swap a random per-sample fraction of code tokens for their type.

    Shi et al., ICSE 2023, Section 3.2 (soft data augmentation). Each text is
    tokenised with Python's ``tokenize`` module; of its NAME, NUMBER, STRING and OP
    tokens, ``k = floor(r * n + 0.5)`` with ``r ~ U[min_ratio, max_ratio]`` drawn
    per text are replaced, at uniform positions, by their type word: keywords by
    ``"keyword"``, other names by ``"identifier"``, numbers by ``"number"``,
    strings by ``"string"``, operators by ``"operator"``. Everything else of the
    text (spacing, comments, newlines) is kept as it was, because the
    replacement is spliced in at the token's character offsets; a space is added
    only where a type word would otherwise touch a neighbouring word. Text that does
    not tokenise as Python (a ``tokenize`` error or an error token) falls back to
    whitespace-separated words, typed by their look; this never raises.

    This view works on strings, before tokenisation for the encoder. Per-text
    work is Python string processing, so it loops over texts; the random draws
    are batched.

    Args:
        min_ratio: smallest replaced fraction (default 0.0).
        max_ratio: largest replaced fraction (default 0.3; unverified against the paper).
        seed: seed for a private ``torch.Generator`` (not with ``generator``).
        generator: optional ``torch.Generator``.

    Example:
        >>> replace = TokenTypeReplacement(0.5, 0.5, seed=0)
        >>> replace(["x = foo(1)"])  # e.g. ['identifier = foo(number)']
    """

    def __init__(
        self,
        min_ratio: float = 0.0,
        max_ratio: float = 0.3,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        owner = type(self).__name__
        self.min_ratio, self.max_ratio = _check_ratio_range(owner, min_ratio, max_ratio)
        generator = _check_generator(owner, generator)
        if seed is not None:
            if generator is not None:
                raise ValueError(f"{owner}: expected seed or generator, got both")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"{owner}: expected seed as an int, got {seed!r}")
            generator = torch.Generator().manual_seed(seed)
        self.generator = generator

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_ratio={self.min_ratio}, max_ratio={self.max_ratio})"

    @staticmethod
    def typed_spans(text: str) -> list[tuple[int, int, str]]:
        """The replaceable tokens of ``text`` as ``(start, end, type word)`` character spans."""
        spans = _python_spans(text)
        return _word_spans(text) if spans is None else spans

    def __call__(self, texts: Sequence[str], generator: torch.Generator | None = None) -> list[str]:
        """Return one view of every text.

        Args:
            texts: source strings.
            generator: optional ``torch.Generator`` for this call.

        Returns:
            A new list of strings, one per text.

        Raises:
            ValueError: ``texts`` is not a sequence of strings.
        """
        owner = type(self).__name__
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ValueError(f"{owner}: expected a list of strings, got {type(texts).__name__}")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"{owner}: expected a list of strings, got {type(text).__name__} at index {index}")
        generator = _check_generator(owner, generator) or self.generator
        all_spans = [self.typed_spans(text) for text in texts]
        if not texts:
            return []
        cpu = torch.device("cpu")
        ratios = _uniform(self.min_ratio, self.max_ratio, len(texts), generator, cpu)
        widest = max(1, max(len(spans) for spans in all_spans))
        scores = _rand((len(texts), widest), generator, cpu)
        out = []
        for text, spans, ratio, row_scores in zip(texts, all_spans, ratios.tolist(), scores, strict=True):
            count = math.floor(ratio * len(spans) + 0.5)
            chosen = sorted(torch.argsort(row_scores[: len(spans)])[:count].tolist())
            out.append(_splice(text, [spans[index] for index in chosen]))
        return out


# -- presets -----------------------------------------------------------------------------

TEXT_VIEW_PRESETS: Registry[str] = Registry("text view preset", {
    "dropout": "SimCSE: both views are the identity; the encoder's dropout is the augmentation",
    "contriever": "Contriever: IndependentCrop then WordDeletion(0.1) on each side",
    "cocosoda": "CoCoSoDa: TokenMask (dynamic masking) on each side; needs mask_token_id",
    "crop": "IndependentCrop only on each side",
    "contriever-documents": "Contriever's crop + WordDeletion on the second (document) side only; "
    "the first (query) side unchanged: augmentation for supervised query -> document pairs",
})
"""Text view presets by name, with what each view of the pair does."""


def text_view_preset_names() -> list[str]:
    """Names of the text view presets, sorted."""
    return TEXT_VIEW_PRESETS.names()


def build_text_views(
    preset: str,
    *,
    mask_token_id: int | None = None,
    pad_token_id: int = 0,
    crop_ratio: tuple[float, float] = (0.1, 0.5),
    deletion_p: float = 0.1,
    mask_ratio: tuple[float, float] = (0.0, 0.3),
    generator: torch.Generator | None = None,
) -> tuple[Compose, Compose]:
    """Build the two token views of a named preset.

    Presets:

    * ``"dropout"``: SimCSE (Gao et al., EMNLP 2021): both views return the tokens
      unchanged; the two embeddings differ only by the encoder's dropout masks,
      so the encoder must be in training mode.
    * ``"contriever"``: Contriever (Izacard et al., TMLR 2022): an independent
      crop (ratio ~ U[crop_ratio]) then token deletion (``deletion_p``) on each side.
    * ``"cocosoda"``: CoCoSoDa (Shi et al., ICSE 2023): dynamic masking with a
      per-row ratio ~ U[mask_ratio] on each side (needs ``mask_token_id``). Its
      replace-by-type view works on strings: see :class:`TokenTypeReplacement`.
    * ``"crop"``: independent crops only.
    * ``"contriever-documents"``: the ``"contriever"`` view on the second side only (the
      documents of query -> document pairs); queries pass unchanged.

    Args:
        preset: one of ``text_view_preset_names()``.
        mask_token_id: the tokenizer's ``[MASK]`` id (``"cocosoda"`` only).
        pad_token_id: the tokenizer's ``[PAD]`` id (default 0).
        crop_ratio: ``(min_ratio, max_ratio)`` of :class:`IndependentCrop`.
        deletion_p: :class:`WordDeletion` probability.
        mask_ratio: ``(min_ratio, max_ratio)`` of :class:`TokenMask`.
        generator: optional ``torch.Generator`` shared by both views.

    Returns:
        ``(view_a, view_b)``: two :class:`Compose` modules, each drawing its own randomness.

    Raises:
        ValueError: unknown preset, missing ``mask_token_id`` for ``"cocosoda"``,
            or an invalid parameter.

    Example:
        >>> view_a, view_b = build_text_views("contriever")
        >>> batch_a, batch_b = view_a(batch), view_b(batch)
    """
    TEXT_VIEW_PRESETS[preset]  # an unknown preset: the registry's error
    _check_generator("build_text_views", generator)

    def pair(value: object, name: str) -> tuple[float, float]:
        try:
            low, high = value  # type: ignore[misc]
        except (TypeError, ValueError):
            raise ValueError(f"build_text_views: expected {name} as a pair (min, max), got {value!r}") from None
        return low, high

    def one_side() -> Compose:
        if preset == "dropout":
            return Compose()
        if preset == "crop":
            crop = IndependentCrop(*pair(crop_ratio, "crop_ratio"), pad_token_id=pad_token_id, generator=generator)
            return Compose([crop])
        if preset == "contriever":
            return Compose(
                [
                    IndependentCrop(*pair(crop_ratio, "crop_ratio"), pad_token_id=pad_token_id, generator=generator),
                    WordDeletion(deletion_p, pad_token_id=pad_token_id, generator=generator),
                ]
            )
        if mask_token_id is None:
            raise ValueError(
                "build_text_views: preset 'cocosoda' needs mask_token_id (the tokenizer's [MASK] id), got None"
            )
        return Compose(
            [
                TokenMask(
                    *pair(mask_ratio, "mask_ratio"),
                    mask_token_id=mask_token_id,
                    pad_token_id=pad_token_id,
                    generator=generator,
                )
            ]
        )

    if preset == "contriever-documents":
        preset = "contriever"
        return Compose(), one_side()
    return one_side(), one_side()
