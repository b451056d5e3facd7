# Simplified Chinese: the TUI views (picker, settings, chats, inspector columns, lens, compare).

# 检查器（inspector.rs、prompt_scoring.rs）：列标题按显示宽度对齐
inspector-next-not-drawn = 下一词元 #{ $i } · 尚未抽取
inspector-choose-next = 下一个
inspector-choose-instead = 替换为
inspector-choose-keys = ↑↓ 或 1-9，Enter · → 抽取
inspector-summary-empty = Tab：查看词元 · F1 帮助
inspector-alt = 备选
inspector-what-if = 假设
inspector-forced = 强制
inspector-selected = 选中
inspector-head-token = 词元
inspector-chosen = 所选
inspector-model = 模型
inspector-logit = logit
inspector-candidate = 候选
inspector-no-candidates = （无候选：检查器已关闭，见 inspector_top_k）
inspector-chosen-outside = （所选词元不在前几名候选中）
inspector-chosen-at = （所选词元：第 { $i } 个候选）
inspector-confidence-message = 消息：{ $n } 词元 · 平均 p { $mean } · 困惑度 { $ppl }
inspector-confidence-reply = 回复：{ $n } 词元 · 平均 p { $mean } · 困惑度 { $ppl }
inspector-bits = { $h } 比特
inspector-remote-partial = 远程：仅前 { $n } 个 · 其余 { $rest } 未报告
inspector-unscored-scoring = （打分中…提示词的意外度在回复之后打分）
inspector-unscored-after-reply = （回复结束后打分）
inspector-unscored-never = （未打分：第一个词元，或在打分开启前读入）
# 假设列的“?”为什么不精确（inspector.rs 的 unsure_text）
inspector-unsure-top-p = top-p 需要的概率质量超出了记录的前几名候选
inspector-unsure-top-k = top-k 保留的词元多于记录的前几名候选
inspector-unsure-min-p = min-p 会保留记录的前几名候选之外的词元
inspector-unsure-temperature = 不做截断时，这个温度会给记录的前几名候选之外的词元分配权重
inspector-unsure-penalty = 低于 1 的重复惩罚可能抬高记录的前几名候选之外的词元

# 采样设置（settings.rs、state/popup.rs）：字段名、说明与错误；配置键不变
settings-temperature = 温度
settings-repeat-penalty = 重复惩罚
settings-seed = 种子
settings-max-tokens = 最大词元数
settings-surprise-p = 意外：p
settings-surprise-bits = 意外：熵
settings-help-temperature = 0 = 贪心，最高 5
settings-help-top-k = 0 = 关闭
settings-help-top-p = (0, 1]，1 = 关闭
settings-help-min-p = [0, 1)，0 = 关闭
settings-help-repeat-penalty = 0.1 到 5，1 = 关闭
settings-help-seed = 随机种子
settings-help-max-tokens = 回复长度上限
settings-help-surprise-p = p 低于此值即意外（F7、n/N）
settings-help-surprise-bits = 或熵高于此值（比特）
settings-range-temperature = 在 0 到 5 之间（0 = 贪心）
settings-range-top-k = 不超过 1000000（0 = 关闭）
settings-range-top-p = 在 (0, 1] 内（1 = 关闭）
settings-range-min-p = 在 [0, 1) 内（0 = 关闭）
settings-range-repeat-penalty = 在 0.1 到 5 之间（1 = 关闭）
settings-range-repeat-last-n = 不超过 65536（0 = 关闭）
settings-range-seed = 0 到 4294967295 之间的整数
settings-not-a-number = { $name } = { $value } 无效：不是数字
settings-out-of-range = { $name } = { $value } 无效：必须{ $range }
settings-max-tokens-zero = { $name } = 0 无效：至少为 1
settings-surprise-p-range = { $name } = { $value } 无效：应为 0 到 1 之间的概率
settings-surprise-bits-range = { $name } = { $value } 无效：以比特计，不小于 0
settings-footer = 从下一条回复起生效。Ctrl-U 清空字段。

# 模型选择器（picker.rs、models.rs、state/compare.rs）
picker-filter = 筛选：
picker-col-name = 名称
picker-col-source = 来源
picker-col-arch = 架构
picker-col-params = 参数
picker-col-quant = 量化
picker-col-bpw = 比特
picker-col-size = 大小
picker-looking = 正在查找模型…
picker-no-files = { $dirs } 中没有 *.gguf 文件。运行 `tokenscope fetch-demos` 获取演示模型。
picker-no-match = 没有模型匹配 { $filter }。
picker-arch-remote = 远程
picker-keys = Enter 加载 · ↑↓ 选择 · 输入以筛选 · F5 重新扫描 · Esc 关闭
picker-compare-keys = Enter 比较（● 当前模型：A）· ↑↓ 选择 · 输入以筛选 · Esc 关闭
picker-compare-no-variant = 模型目录中没有此模型的其他变体：用 `tokenscope quantize` 生成一个（见 README 的量化实验），或将模型与自身比较（KL 为 0：一次自检）。
picker-tag-crashed = ✗ 导致 llama.cpp 崩溃
picker-tag-load-failed = ✗ 加载失败
picker-cannot-compare = { $file } 无法与此模型比较：{ $why }。
picker-already-loaded = { $name } 已经加载。
picker-refuse-remote = 远程：无法比较
picker-refuse-unreadable = 无法读取
picker-refuse-vocab = 词表不同（{ $b } 个词元，此模型有 { $a } 个）：无法逐词元比较
picker-model-of = { $url } 的模型
picker-server = 服务器 { $name }
picker-map-title = { $name } 的张量分布（占文件的比例）：
picker-map-embedding = 嵌入
picker-map-attention = 注意力 q/k/v/o
picker-map-feed-forward = 前馈
picker-map-norms = 归一化
picker-map-output = 输出头
picker-map-other = 其他
picker-map-tied = 与嵌入共享（其各行给出 logits）

# 已保存的对话（chats.rs）
chats-search = 搜索：
chats-new-title = 新标题：
chats-col-title = 标题
chats-col-saved = 保存时间
chats-col-model = 模型
chats-col-turns = 轮数
chats-none = 还没有保存的对话：聊天时每个对话都会自动保存。
chats-no-match = 没有对话匹配 { $filter }。
chats-confirm-delete = 删除“{ $title }”？y 删除 · 其他任意键保留
chats-rename-keys = Enter 重命名 · Esc 保留原标题
chats-keys = Enter 打开 · ↑↓ 选择 · 输入以搜索 · F2 重命名 · Del 删除 · Esc 关闭
chats-reply-under-way = 正在生成回复：先停止它（Esc），再打开另一个对话。

# 层透镜（lens.rs、lens_view.rs、theme.rs 的注意力图例）
lens-row-model = 模型
lens-more = 更多
lens-running = 正在逐层运行模型…
lens-error = 无法透视：{ $error }
lens-never = 从未
lens-at-layer = 第 { $l } 层
lens-summary = 模型的首选 { $piece }（{ $p }%）。进入前 { $k }：{ $listed }；首次成为首选：{ $first }；从此一直是首选：{ $from }（共 { $n } 层）。
lens-bos-or-template = （BOS 或模板）
lens-attention-title-layer = 注意力 · L{ $layer }（共 { $n } 层）· { $head } · ↑↓ 层 · h 头 · a 网格 · Esc
lens-attention-from = 从 { $label } 的位置看之前每个词元的权重（即对话中的颜色），最高的是：{ $most }
lens-attention-weight = 注意力权重
lens-no-message = 没有这条消息
lens-no-token-there = 回复在那里没有词元
lens-first-of-context = 上下文的第一个词元之前没有内容可用来预测它
lens-first-of-prompt = 提示词的第一个词元之前没有内容可用来预测它
lens-prompt-unknown = 只能透视本次会话中生成的回复的提示词词元：请先发送一条消息（或按 F8 重新生成回复）
lens-no-model = 未加载模型：按 Ctrl-O 选择一个。
lens-remote = 层透镜读取 llama.cpp 计算图内部的残差流，而 { $url } 的远程服务器不提供它：请加载本地模型。
lens-reply-under-way = 正在生成回复：透镜在回复结束或暂停（单步模式，F7）后运行；Esc 停止回复。
lens-gave-way = 透镜让位给了之后发出的请求：再按一次 l
lens-label-reply = { $piece }（回复词元 { $i }）
lens-label-next = 下一个词元（回复词元 { $i }，尚未抽取）
lens-label-prompt = { $piece }（提示词词元 { $i }）

# 比较（compared.rs、compare.rs）
compared-token = 词元
compared-nats = { $kl } 奈特
compared-top1-differs = 首选不同：
compared-top1-agrees = 首选相同：{ $piece }
compared-candidate = 候选
compared-b-own-top = B 自己的前几名：
compared-no-candidates = 这次比较没有报告候选。
compare-memory-kv = 权重 { $weights } + KV 缓存和 logits { $kv }
compare-memory = 权重 { $weights }
compare-another-model = 另一个模型
compare-other-writer = 它由 { $writer } 生成，其词元与 { $a }（当前模型，即模型 A）不同：用 Ctrl-O 加载 { $writer }（或其变体）来比较它的回复
compare-prompt-unknown = 这条回复所回答的提示词无法确切得知（保存的回复只保留最后 1024 个提示词词元）：先重新生成（F8）或继续它（c），再比较
compare-no-prompt = 这条回复之前没有提示词，无从比较
compare-no-model = 未加载模型：按 Ctrl-O 选择一个，聊天后再比较。
compare-reply-under-way = 正在生成回复：等它结束后再比较（Esc 停止）。
compare-loading = 正在加载模型：加载完成后再比较。
compare-under-way = 正在比较：Esc 停止。
compare-no-reply = 还没有可比较的回复：先聊天，再比较一条回复（在词元光标中按 v）。
compare-cannot = 这条回复无法比较：{ $why }。
compare-picker-message = 将这条回复与另一个模型比较：它的词元被逐个强制送入两个模型。此模型的变体排在前面。
compare-comparing-with = 正在与 { $file } 比较…（Esc 停止）
compare-loading-b = 正在当前模型旁加载 { $file } 以便比较…（Esc 停止）
compare-stopped-b-stays = 比较已停止。{ $file } 保持加载以备下次使用（{ $memory }）；在词元光标中按 V 释放它。
compare-comparing-b-loaded = 正在与 { $file } 比较（比较期间它保持加载：{ $memory }；在词元光标中按 V 释放）… Esc 停止。
compare-done = 比较完成：{ $line }。Tab，然后 ←→：逐词元查看两个模型的候选；F3 / h：按 KL 着色的热图。B 保持加载（{ $memory }）；在词元光标中按 V 释放。
compare-stopped-not-loaded = 比较已停止：第二个模型未加载。
compare-stopped-kept = 比较已停止：已比较的词元保留。
compare-stopped-none = 比较在任何词元比较之前就停止了。
compare-load-failed = 无法加载 { $file } 进行比较：{ $error }。
compare-failed = 比较失败：{ $error }。
compare-stopping = 正在停止比较…
compare-unloaded = 已卸载 { $file }：比较模式关闭（已做的比较保留在各自的回复上）。
compare-no-b = 没有加载第二个模型：按 v 比较一条回复。
compare-status-loading = ⇄ 正在加载 { $file } { $pct }% · Esc 停止
compare-status-comparing = ⇄ 比较中 { $done }/{ $total } · Esc 停止
compare-status-stopping = ⇄ 正在停止…（Esc：重启引擎）

# 帮助中的热图图例、系统提示编辑器
help-legend-p = 热图：
help-legend-entropy = 按熵着色的热图：
help-legend-kl = 按 KL(A‖B) 着色的热图：
heat-kl-band-top = ≥1 奈特
system-prompt-template-own = 你没有设置系统提示时，模型的聊天模板会加入它自己的：“{ $prompt }”
compared-line-starting = ⇄ 正在与 { $b } 比较… 0/{ $total }
compared-line-stats = 平均 KL { $kl } 奈特 · 首选一致 { $agree }% · 困惑度 A { $ppl_a } / B { $ppl_b }
compared-line-running = ⇄ 正在与 { $b } 比较… { $n }/{ $total } · { $stats }
compared-line-done = ⇄ 对比 { $b }（{ $quant }）：{ $stats }
compared-line-stopped = ⇄ 对比 { $b }（{ $quant }），停在 { $n }/{ $total }：{ $stats }
inspector-cut-greedy = 贪心
lens-drawn-from = 回复生成时 { $piece } 的概率是 { $drawn }%（逐个词元计算）；本次一次性计算整段文本，相同的浮点数以不同顺序求和：{ $here }%。
inspector-reply-no-tokens = 上一条回复在第一个词元之前就结束了：没有可查看的词元。
status-kv-runs = ● KV 计时 · 使用缓存 { $cached } 词元 · 不用缓存 { $recomputed } 词元
status-kv-stopping = ● 正在停止 KV 计时…
# 状态栏：引擎在后台做的其他工作（status.rs）
status-lens = ● 层透镜计算中…
status-rollouts = ● 展开 { $n } 条 × { $m } 词元
status-asking = ● 正在询问这段文本…
status-scoring-prompt = ● 正在为提示词打分…
