"""The World Values Survey and what follows from it alone (bottom layer; imports nothing above).

`countries` (a country is its ISO-3 code), `items` (the 259 scored items, option numbering,
answer shares, majorities, the 18 countries' consensus), `similarity` (between countries; the
paper's rule for Cross-Culture Thinking; it uses the alignment formula, a leaf of `scoring`).
"""
