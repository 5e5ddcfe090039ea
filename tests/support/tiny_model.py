"""The tiny random test model, built by the library (`culturespa.inference.tiny_model`)."""

from culturespa.inference.tiny_model import (
    SPECIAL_TOKENS,
    build_tiny_model,
    build_tiny_tokenizer,
    chatml_template,
    main,
)

__all__ = ["SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer", "chatml_template", "main"]

if __name__ == "__main__":
    import sys

    sys.exit(main())
