# Deployment checks (tests/deploy/): the Helm chart rendered and validated,
# the Dockerfile, the Jenkins pipeline and its scripts, and the pipeline's
# smoke test against a real system. They run under Debian's own Python
# (/usr/bin/python3), where python3-yaml and python3-kubernetes live.
set(BSS_DEPLOY_DIR ${CMAKE_BINARY_DIR}/deploy)
set(BSS_DEPLOY_SRC ${PROJECT_SOURCE_DIR}/tests/deploy)

# The Helm renderer, built offline from Debian's Go packages; cache in the build dir.
add_test(NAME deploy_renderer_build
  COMMAND bash ${BSS_DEPLOY_SRC}/build_renderer.sh ${BSS_DEPLOY_DIR})
set_tests_properties(deploy_renderer_build PROPERTIES
  FIXTURES_SETUP deploy_renderer TIMEOUT 300 LABELS deploy)

add_test(NAME deploy_chart
  COMMAND /usr/bin/python3 ${BSS_DEPLOY_SRC}/test_chart.py
          --renderer ${BSS_DEPLOY_DIR}/helmrender --out ${BSS_DEPLOY_DIR}/rendered)
set_tests_properties(deploy_chart PROPERTIES
  FIXTURES_REQUIRED deploy_renderer TIMEOUT 180 LABELS deploy)

add_test(NAME deploy_pipeline COMMAND /usr/bin/python3 ${BSS_DEPLOY_SRC}/test_pipeline.py)
set_tests_properties(deploy_pipeline PROPERTIES TIMEOUT 120 LABELS deploy)

add_test(NAME deploy_dockerfile
  COMMAND /usr/bin/python3 ${BSS_DEPLOY_SRC}/test_dockerfile.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(deploy_dockerfile PROPERTIES TIMEOUT 120 LABELS deploy)

add_test(NAME deploy_smoke
  COMMAND /usr/bin/python3 ${BSS_DEPLOY_SRC}/test_smoke.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(deploy_smoke PROPERTIES TIMEOUT 300 LABELS deploy)
