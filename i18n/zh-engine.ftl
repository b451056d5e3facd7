# Simplified Chinese: the lens, rollouts, compare and chats commands, and the engine refusals of lens, rollouts, comparisons, the KV view and asking.
# 术语同 zh.ftl：词元 token、首选 top-1、层透镜 layer lens、展开 rollout、残差流、KV 缓存、奈特 nats、困惑度。
# chats、export、import（commands/chats.rs）
chats-cli-none = 还没有保存的对话（每次聊天都会随时保存）。
chats-cli-no-match = 没有与 { $search } 匹配的已保存对话。
chats-cli-col-id = 编号
chats-cli-col-saved = 保存时间
chats-cli-col-turns = 轮数
chats-cli-col-model = 模型
chats-cli-col-title = 标题
chats-cli-wrote = 已将对话 { $id } 写入 { $path }。
chats-cli-imported = 已将“{ $title }”导入为对话 { $id }。
# compare（commands/comparison.rs）
compare-two-models-cli = compare 至少需要两个模型：--model A --model B [--model C …]
compare-two-models = compare 至少需要两个模型：--model A --model B
compare-too-many = compare 一次最多比较 { $max } 个模型（引擎的模型槽位数）：其余的请另起一次比较
compare-heading = A = { $name }（{ $quant }，{ $size }）；比较了 { $tokens }
compare-col-model = B
compare-col-type = 类型
compare-col-mean-kl = 平均 KL
compare-col-median-kl = KL 中位数
compare-col-p99-kl = p99 KL
compare-col-max-kl = 最大 KL
compare-col-top1 = 同首选
compare-col-mean-dp = 平均 Δp
compare-col-rms-dp = RMS Δp
compare-col-ppl-a = 困惑度 A
compare-col-ppl-b = 困惑度 B
compare-legend = （KL 以奈特为单位，在整个词表上计算；Δp = 每个词元的 p_B − p_A；所有模型同时加载：权重共 { $memory }）
compare-worst = { $model } 与 A 分歧最大的 { $tokens }：
compare-windows = 注意：文本有 { $n } 个词元，超过 { $n_ctx } 的上下文：按上下文大小的重叠窗口比较，每个窗口从头计算；每个词元只比较一次，前面至少有半个上下文（--ctx 设置上下文）
# lens（commands/lens.rs、engine/lens）
lens-cli-remote = 层透镜读取模型计算图内部的残差流和注意力，而 { $url } 上的服务器不通过 HTTP 提供它们：请用 --model 指定本地模型文件
lens-cli-top-range = --top { $top } 超出范围：应为 1 到 { $max }
lens-cli-position-range = --position { $position } 超出范围：文本有 { $n } 个词元（位置 0 到 { $last }）
lens-cli-no-tokens = 这段文本没有可透视的词元
lens-cli-heading = 位置 { $position }（{ $token }）之后的层透镜，共 { $layers } 层；p 在整个词表上计算，熵以比特为单位
lens-cli-mark-first = ← 首次成为首选
lens-cli-mark-stays = ← 从此一直是首选
lens-cli-row-model = 模型
lens-cli-row-attention = 注意力
lens-engine-no-tokens = 没有可透视的词元：请给出至少一个词元的文本（或词元 id）
lens-engine-position-range = 位置 { $position } 超出范围：序列有 { $n } 个词元（位置 0 到 { $last }）
lens-engine-position-context = 位置 { $position } 超出模型 { $n_ctx } 个词元的上下文
lens-engine-top-range = top_k { $top } 超出范围：应为 1 到 { $max }
# rollouts（commands/rollouts.rs、engine/rollouts.rs）
rollouts-reply-ended = 回复在 { $n } 个词元后结束（{ $stop }），没到回复词元 { $at }：请用 --at { $last } 或更小的值
rollouts-reply-before = 词元 { $at } 之前的回复："{ $reply }"
rollouts-numbers = 对数似然 { $ll } 奈特 · 平均 p { $mean } · { $n } 个词元
rollouts-summary = { $rollouts } 条展开，{ $tokens } 个词元，用时 { $ms } 毫秒
rollouts-recurrent = 这个模型（循环或混合架构）只保留最新状态：它的缓存无法共享给展开
rollouts-no-context = 没有可展开的上下文：请给出至少一个词元
rollouts-context-small = { $context } 个上下文词元 + { $n } 条各 { $m } 个词元的展开需要 { $need } 个 KV 缓存单元，超过上下文的 { $n_ctx }：请减少展开条数或缩短展开，或用更大的上下文加载
