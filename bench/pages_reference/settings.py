"""The product's settings, with the reference views' URLconf in front of the product's.

Only ROOT_URLCONF differs: middleware, templates, sessions, cache and database are the
product's, so a reference and a page cost the same below the view.
"""

from project.settings import *  # noqa: F403 - the product's settings, unchanged

ROOT_URLCONF = "pages_reference.urls"
