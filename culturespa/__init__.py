"""culturespa: cultural alignment of LLMs on the World Values Survey (CultureSPA, arXiv 2410.12971)."""

__version__ = "0.1.0"
