# The engine's include layering (engine/README.md, the ```layers block): each folder includes only
# the layers below it.
add_test(NAME engine_layers COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_engine_layers.py
         ${PROJECT_SOURCE_DIR}/engine)
set_tests_properties(engine_layers PROPERTIES LABELS unit TIMEOUT 60)
