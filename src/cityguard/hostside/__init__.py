"""Code that runs on managed hosts as well as in cityguard: Ansible ships these modules to the
hosts as module_utils (playbooks/ansible.cfg adds this directory), and the engine imports them,
so a rule the roles enforce and the rule the checks verify are the same code.

Standard library only, and importable on the hosts' Python (3.8 and later).
"""
