"""funboost reads its settings from a module named ``funboost_config`` on sys.path (and writes a default
one into the "project root" when there is none): the SQLite queue files go under BENCH_DATA_DIR, and
Redis points at a closed port, so a hidden Redis dependency would fail loudly instead of using the
machine's Redis."""

import logging
import os

from funboost.funboost_config_deafult import BrokerConnConfig as _Broker
from funboost.funboost_config_deafult import FunboostCommonConfig as _Common


class BrokerConnConfig(_Broker):
    SQLLITE_QUEUES_PATH = os.path.join(os.environ.get("BENCH_DATA_DIR", "."), "funboost-sqlite")
    REDIS_HOST = "127.0.0.1"
    REDIS_PORT = 1
    REDIS_URL = "redis://127.0.0.1:1/0"


class FunboostCommonConfig(_Common):
    SHOW_HOW_FUNBOOST_CONFIG_SETTINGS = False
    FUNBOOST_PROMPT_LOG_LEVEL = logging.WARNING
    KEEPALIVETIMETHREAD_LOG_LEVEL = logging.WARNING
