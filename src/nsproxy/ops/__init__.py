"""Operations: logging, runtime API, metrics, process lifecycle."""
