# Simplified Chinese: notices and the popups (rollouts, KV cache, asking about text).
# 术语同 zh.ftl：词元 token、概率、熵、采样、温度、展开 rollout、KV 缓存、预填充 prefill、解码 decode、奈特 nats。

# 展开弹窗（rollouts_view.rs、components/rollouts.rs）
rollouts-title = 展开 · { $label } · ↑↓ 选择 · Enter 分支 · Esc
rollouts-about = 此处排名前 { $n } 的候选各按回复的采样设置续写至多 { $m } 个词元（第 r 名用种子 { $seed } + r − 1；温度 0 为贪心）。ln P：联合对数概率，即 Σ ln p，单位为奈特（自然对数）；平均 p：各词元概率的平均值；颜色：每个词元的 p，与对话热图相同。
rollouts-row = ln P { $ll } 奈特 · 平均 p { $mean } · { $n } 词元
rollouts-rolling-out = 展开中…
rollouts-none = 没有展开：{ $error }
rollouts-no-branch = 此处不能分支：{ $why }。
rollouts-enter-keeps = Enter 把第 { $rank } 条展开保留为回复的分支（[ ] 切换版本）。
rollouts-kept = 第 { $rank } 条展开已保留为回复的第 { $i } 个版本，共 { $n } 个（[ ] 切换版本，c 继续它）。
rollouts-reply-under-way = 正在生成回复（或在单步模式中暂停）：展开取自它暂停的那一步（在那里按 Ctrl-Y）；要展开它的其他词元，先让回复结束或停止它（Shift-→ 继续运行，Esc 停止）。
rollouts-model-loading = 正在加载模型：请等它完成。
rollouts-prompt-token = 从提示词元展开只能查看：从回复的词元展开，才能把其中一条保留为分支
rollouts-gave-way = 展开让位给了之后发出的请求：再按一次 o

# KV 缓存弹窗（kv_view.rs、components/kv_cost.rs）
kv-title-running = KV 缓存省下多少 · { $label } · Esc 取消
kv-title-done = KV 缓存省下多少 · { $label } · Esc 关闭
kv-label = 第 { $n } 条消息的回复
kv-no-reply = 这条消息还没有回复可计时：先发送它
kv-reply-under-way = 正在生成回复：KV 缓存视图要独自把模型运行两次，请等回复结束（Esc 停止它）。
kv-about = 对这段上下文的贪心回复（至多 { $n } 个词元），先使用 KV 缓存生成（每个词元一次解码），再不用缓存生成（每个词元之前重新计算整个序列）。
kv-no-timing = 没有计时：{ $error }
kv-with-label = 使用 KV 缓存：
kv-without-label = 不用缓存：
kv-with-run = { $n } 词元，{ $s } s · 词元 0（预填充）{ $prefill } ms · 之后每词元 { $per }
kv-without-run = { $n } 词元，{ $s } s · 词元 0 { $prefill } ms · 之后每词元 { $per }
kv-same-tokens = 两次运行写出的词元相同
kv-differ = 两次运行从回复词元 { $i } 起不同（一批多个位置与单个位置的解码舍入不同：一个近乎平局的选择翻转了）
kv-totals = 合计：使用 KV 缓存 { $with } s，不用 { $without } s · 缓存使它快 { $ratio } 倍
kv-cancelled = 已取消（Esc 关闭）
kv-no-tokens = 完成：没有词元
kv-generating-cached = 正在使用 KV 缓存生成…（Esc 取消）
kv-generating-recomputed = 正在不用缓存再次生成…（Esc 取消）
kv-legend-cached = 使用 KV 缓存
kv-legend-recomputed = 不用缓存（重新计算）
kv-axis-position = 位置（不含词元 0，即预填充）
kv-axis-ms = 每词元 ms

# 选择时询问文本、词表查找（asking.rs、components/choose.rs）
popup-no-such-message = 没有这条消息
ask-no-paused-reply = 没有暂停的回复
ask-paused-not-shown = 暂停的回复未显示
ask-prompt-not-built = 这条回复的提示不是在本次会话中构建的：重新生成它（F8）后才能在此询问文本
ask-no-model = 未加载模型
ask-asking = 正在询问模型…
ask-updating = （更新中…）
ask-cannot = 无法询问：{ $why }
ask-whole = 整体 p={ $p }
ask-preview-about = 每个词元在给定其前文时的 p（在回复旁强制送入，不提交任何内容）
ask-can-begin = { $token } 是一个 { $len } 字节字符的开头：{ $lo } … { $hi }（由其字节推出）
ask-token = 个词元
ask-tokens = 个词元
ask-find-first = ，按 id 取前 { $n } 个排名
ask-find-head = 词表：{ $n } { $noun }包含“{ $text }”{ $probed }{ $stale } · Ctrl-F：回到文本
ask-rank = 排名 { $rank }
choose-lone-digit = 共有 { $n } 个候选：单独一个数字选择其一（继续输入则强制文本）。
choose-same-token = 这就是回复中的词元：请选另一个，或按 r 重新采样它。
choose-none-found = 还没有找到词元：输入某个词元文本的一部分（Ctrl-F：回到文本）。

# 提示行（transitions.rs、reply.rs、engine_events.rs、saving.rs 等）
notice-warning = 警告：{ $warning }。
notice-new-chat-unsaved = 这段对话未保存（保存失败）：再按 Ctrl-N 会不保存它而开始新对话；按其他键则保留它（下一条消息会再次尝试保存）。
notice-system-prompt-template = 你没有设置系统提示；模板会加上它自己的（见下方）。输入一个。
notice-system-prompt-none = 没有系统提示。输入一个；Enter 保存，Esc 取消。
notice-system-prompt-removed = 已移除系统提示。
notice-system-prompt-set = 已设置系统提示：从下一条回复起作用于整个对话。
notice-opened-loading = 已打开“{ $title }”；正在加载它的模型。
notice-opened = 已打开“{ $title }”。
notice-chat-model-gone = “{ $title }”是用 { $model } 写的，该模型已不在：选择一个模型以继续。
notice-branch-on-prompt = 这是你消息中的词元：e 编辑该消息；分支只能从回复的词元开始。
notice-no-candidates = 这个词元没有记录候选（当时检查器关闭）：r 重新采样它。
notice-sampling = 采样：温度 { $temperature }，top_k { $top_k }，top_p { $top_p }，min_p { $min_p }，repeat_penalty { $repeat_penalty }，种子 { $seed }，max_tokens { $max_tokens }；意外：p < { $below_p } 或熵 > { $above_entropy } 比特。
notice-whatif-applied = 下一条回复的采样：温度 { $temperature }，top_k { $top_k }，top_p { $top_p }，min_p { $min_p }。
notice-reply-generating = 正在生成回复：请等待，或按 Esc 停止。
notice-whatif-remote = 假设重采样需要每个词元处模型的完整分布：这条回复来自远程服务器，它只报告了前几名候选（本地模型的回复有完整分布）。
notice-another-model = 另一个模型
notice-to-surprise-mode = 运行至下一意外：回复一直运行，直到将要抽取的词元 p < { $p } 或分布的熵超过 { $h } 比特，然后暂停（F5 设置两者；暂停时 Shift-→ 继续运行）。再按 F7：自由生成。
notice-surprise-entropy = 熵 { $h } 比特 > { $max }
notice-surprise = 意外：采样器会在此抽取 { $token }（{ $why }）。→ 抽取它，Enter 强制选中的候选，Shift-→ 运行到下一意外，Esc 停止。
notice-other-model-branch = 这条回复由 { $model } 写成，它的词元不属于当前模型：加载它（Ctrl-O）才能从其词元分支，或重新生成（F8）。
notice-other-model-continue = 这条回复由 { $model } 写成，它的词元不属于当前模型：加载它（Ctrl-O）才能继续。
notice-crash-loading = llama.cpp 在加载 { $file } 时崩溃：{ $reason }
notice-crash-generating = llama.cpp 在用 { $file } 生成时崩溃：{ $reason }
notice-engine-ended = 引擎进程在{ $doing }时{ $ended }：{ $reason }
notice-crash-marked = 该文件在模型选择器中标记为 ✗。
notice-engine-reloading = 引擎已重启：正在重新加载 { $name }…
notice-engine-restarted = 引擎已重启。
notice-engine-restarted-no-model = 引擎已重启：按 Ctrl-O 选择模型。
notice-engine-reloaded = 引擎已重启：{ $name } 已重新加载。
notice-template-system-prompt = 你没有设置系统提示：它的模板会加上“{ $prompt }”（F6 设置你自己的）。
notice-dropped-one = 对话超出了上下文：最早的一条消息被略去。
notice-dropped = 对话超出了上下文：最早的 { $n } 条消息被略去。
notice-context-full = 上下文已满（{ $used }/{ $size } 词元）：回复在此停止。你可以继续：为腾出空间，最早的轮次不再送入模型（Ctrl-N 开始新对话）。
notice-heat = 热图：{ $what }，按样式：{ $legend }（F3：下一种）。
notice-heat-p = 每个词元在其前文下的概率
notice-heat-entropy = 选出每个词元时分布的熵（模型有多犹豫）
notice-heat-kl = 每个比较词元的 KL(A‖B)（其他词元按概率）
notice-no-model-dir = （未配置模型目录）
notice-no-model-chosen = 未选择模型。在以下位置查找模型（*.gguf）：{ $dirs }。运行 `tokenscope fetch-demos` 下载小型演示模型。
notice-edit-dropped = 正在编辑的消息已不再显示：编辑已放弃。
notice-saved-again = 已重新保存：对话已写入磁盘。
notice-save-forked = 对话 { $from } 已被另一个窗口保存：本窗口的版本另存为对话 { $to }，对方的保留（两者都在列表中，F9）。
notice-not-saved-read-only = 未保存：{ $error }。对话会留在这里直到你退出（文件可写后重启 tokenscope 才能再次保存）。
notice-not-saved = 未保存：{ $error }。对话留在这里；下次更改后会再次尝试保存。
notice-saving-off = 保存已关闭：{ $why }。已保存的对话可以打开（F9）；你在这里写的内容保留在内存中，直到退出。
notice-store-failed = 无法保存对话：{ $error }。这段对话留在内存中；每轮之后会再次尝试保存。
notice-nothing-to-resume = 没有可恢复的已保存对话：这是一段新对话。
notice-cannot-resume = 无法恢复上一段对话：{ $error }
notice-cannot-list = 无法读取已保存的对话：{ $error }
notice-open-unsaved = 当前显示的对话无法保存，从列表打开另一段（包括它自己的已保存版本）会丢失它：{ $how }；按两次 Ctrl-N 放弃当前对话。
notice-open-unsaved-off = 保存已关闭，它会保留到你退出
notice-open-unsaved-retry = 等它保存成功（释放磁盘空间，关闭另一个 tokenscope）后再打开
notice-cannot-open = 无法打开那段对话：{ $error }
notice-shown-deleted = 当前显示的对话已删除：这是一段新对话。
