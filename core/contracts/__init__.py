"""Contracts shared by the API and the workers: the shapes of commands, checked the same way
where they are accepted (the API's edge) and where they are carried out (a worker reading the
log). Only pydantic and the standard library here: the API process loads no geometry stack."""
