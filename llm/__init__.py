"""The only package that imports langchain: the model factory, prompts and the offline model.

The attention issue fills it; the foundation only fixes its place.
"""
