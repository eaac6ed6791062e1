"""The study's reader table (:class:`study.results.readers.ReadersBlock`) from its readings."""

from __future__ import annotations

import pandas as pd

from study.results.readers import ReaderRow, ReadersBlock


def _text(row: object, key: str) -> str:
    """An optional text characteristic of a reader ("" when missing)."""
    value = getattr(row, key, None) if row is not None else None
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def readers_block(readings: pd.DataFrame, *, characteristics: pd.DataFrame | None = None) -> ReadersBlock:
    """One row per reader: group, experience, specialty, readings per session, median time.

    Parameters
    ----------
    readings : the validated readings (``study.readings.load_readings``; ``readings.parquet``).
    characteristics : ``reader_id, reader_group, years_of_experience, specialty`` [,
        ``certification``, ``reading_conditions``] of each reader (``study.readers.export.reader_characteristics``), or None for a readings CSV.

    Returns
    -------
    ReadersBlock
        Readers in the characteristics (even without readings yet) and in the readings,
        sorted by id.
    """
    rd = readings
    modality = rd["modality"] if "modality" in rd else pd.Series("unaided", index=rd.index)
    assessable = rd["assessable"].astype(bool) if "assessable" in rd else pd.Series(True, index=rd.index)
    chars = {} if characteristics is None else {str(r.reader_id): r for r in characteristics.itertuples()}
    ids = sorted(set(rd["reader_id"].astype(str)) | set(chars))
    rows = []
    for rid in ids:
        mine = rd["reader_id"].astype(str) == rid
        c = chars.get(rid)
        group = str(c.reader_group) if c is not None else str(rd.loc[mine, "reader_group"].iloc[0])
        years = None
        if c is not None and c.years_of_experience is not None and not pd.isna(c.years_of_experience):
            years = float(c.years_of_experience)
        secs = rd.loc[mine, "seconds"].dropna() if "seconds" in rd else pd.Series([], dtype=float)
        rows.append(ReaderRow(reader_id=rid, reader_group=group, years_of_experience=years,
                              specialty=str(c.specialty) if c is not None and c.specialty else "",
                              certification=_text(c, "certification"),
                              reading_conditions=_text(c, "reading_conditions"),
                              n_unaided=int((mine & (modality == "unaided")).sum()),
                              n_aided=int((mine & (modality == "aided")).sum()),
                              n_not_assessable=int((mine & ~assessable).sum()),
                              median_seconds=float(secs.median()) if len(secs) else None))
    return ReadersBlock(readers=rows, source="reading database" if characteristics is not None else "readings file")
