"""`cityguard harden`: enforce the baseline with the site's playbooks.

settings: the baseline and parameters come from the catalog selection; action: action.py;
rendering: view.py; CLI registration: cli.py.
"""
