# Bare-metal Arm (Cortex-M) with newlib-nano. CPU/FPU flags come from the board (HK_BOARD_CFLAGS).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy CACHE FILEPATH "")
# No test program can link without the board's startup and linker script: skip the link checks.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_COMPILER_WORKS TRUE)
set(CMAKE_ASM_COMPILER_WORKS TRUE)
set(HK_TOOLCHAIN_LIBS "--specs=nano.specs;--specs=nosys.specs" CACHE STRING "")
