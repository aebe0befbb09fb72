"""The explorer: a local web page over the event index (:mod:`fedcoin.roles.explorer.server`),
its view model (:mod:`~fedcoin.roles.explorer.model`) and the same charts as PNG files
(:mod:`~fedcoin.roles.explorer.plots`)."""
