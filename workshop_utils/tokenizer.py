"""The course tokenizer: byte-level BPE trained with Hugging Face `tokenizers` on the course corpus.

This is the production path (module 03 also builds BPE from scratch in `bpe.py` for teaching). It is
wrapped as a `PreTrainedTokenizerFast` with BOS/EOS/PAD and a chat template, so SFT (module 07) and
LoRA (module 08) use the standard `apply_chat_template` API.
"""

from __future__ import annotations

import json

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .config import Profile
from .corpus import load_corpus
from .paths import artifacts_dir

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
END = "<|end|>"
TOKENIZER_VERSION = 3  # bump when training changes, so cached tokenizers (and models built on them) retrain
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS.values(), END]  # ids 0..6, in this order

# One turn per line: <|role|>content<|end|>\n. The assistant's content and its <|end|> sit inside
# {% generation %} so `return_assistant_tokens_mask=True` marks exactly what SFT trains on.
# (A newline written right after an {% endif %} is swallowed by Jinja's whitespace control: write {{ '\n' }}.)
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role'] + ' (valid: system, user, assistant)') }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{{ '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def train_course_tokenizer(text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `text` and wrap it with special tokens and the chat template."""
    if not text:
        raise ValueError("cannot train a tokenizer on an empty text")
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)} (256 bytes + specials), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # One piece: the trainer sees exactly the pre-tokens that encoding the whole text produces (splitting
    # at blank lines would change them at every split and break equality with the from-scratch BPE).
    tok.train_from_iterator([text], trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[*ROLE_TOKENS.values(), END],
        model_max_length=1_000_000,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tokenizer_dir(profile: Profile):
    """Cache folder of the course tokenizer for a profile."""
    return artifacts_dir(profile.name, "course_tokenizer")


def load_course_tokenizer(profile: Profile) -> PreTrainedTokenizerFast:
    """The cached course tokenizer of a profile, trained deterministically on first use."""
    corpus = load_corpus(profile)
    path = tokenizer_dir(profile)
    meta_file = path / "course_meta.json"
    meta = {
        "corpus": corpus.sha256,
        "vocab_size": profile.lm.vocab_size,
        "specials": SPECIAL_TOKENS,
        "version": TOKENIZER_VERSION,
    }
    if meta_file.exists() and json.loads(meta_file.read_text()) == meta:
        tok = PreTrainedTokenizerFast.from_pretrained(path)
        tok.chat_template = CHAT_TEMPLATE
        return tok
    tok = train_course_tokenizer(corpus.train, profile.lm.vocab_size)
    tok.save_pretrained(path)
    meta_file.write_text(json.dumps(meta))
    return tok
