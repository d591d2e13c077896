"""Streamlit glue shared by the pages: state keys, cached loaders, solves, figure builders."""
