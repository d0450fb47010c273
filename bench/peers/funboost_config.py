"""funboost reads its settings from a module named ``funboost_config`` on sys.path (and writes a
default one into the project root when there is none): keep its queues and RPC results in db 9."""

import logging

from _common import REDIS_DB
from funboost.funboost_config_deafult import BrokerConnConfig as _Broker
from funboost.funboost_config_deafult import FunboostCommonConfig as _Common


class BrokerConnConfig(_Broker):
    REDIS_DB = REDIS_DB
    REDIS_DB_FILTER_AND_RPC_RESULT = REDIS_DB
    REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


class FunboostCommonConfig(_Common):
    SHOW_HOW_FUNBOOST_CONFIG_SETTINGS = False
    FUNBOOST_PROMPT_LOG_LEVEL = logging.WARNING
    KEEPALIVETIMETHREAD_LOG_LEVEL = logging.WARNING
