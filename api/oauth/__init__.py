"""Connecting by OAuth: the signed single-use `state` (`state`), where each system sends the user
back (`flows`), and the callback that makes the connection (`callback`)."""
