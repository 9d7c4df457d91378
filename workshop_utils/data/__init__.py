"""Module 02: the raw mini crawl and its cleaning pipeline."""
