"""HAProxy-format configuration: lexer, keyword tables, parser and the frozen model."""
