"""Build a small offline Hugging Face tokenizer for GuideLLM's synthetic prompts.

Why: GuideLLM sizes synthetic prompts with a Hugging Face tokenizer and this machine cannot download
one. A word-level tokenizer over Faker's lorem words (the words GuideLLM's synthetic text is made of) is
enough to size prompts; the emulator counts the tokens it reports either way. Runs inside GuideLLM's venv.
"""

from __future__ import annotations

import string
import sys

from faker.providers.lorem.en_US import Provider
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def main(directory: str) -> None:
    vocab = {"[UNK]": 0, "[BOS]": 1, "[EOS]": 2}
    for word in [*Provider.word_list, *string.ascii_letters, *string.digits, *string.punctuation]:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", bos_token="[BOS]",
                                   eos_token="[EOS]")
    fast.save_pretrained(directory)


if __name__ == "__main__":
    main(sys.argv[1])
