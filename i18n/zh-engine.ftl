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
# 引擎的拒绝（engine/*.rs、engine/remote）：在显示它的进程里按界面语言组织措辞（EngineError::Refused）
engine-no-sampled-token = 采样器没有选出任何词元
engine-no-logits = 模型没有给出 logits
engine-slot-twice = 模型槽位 { $slot } 被指定了两次：请把要比较的每个模型各加载到自己的槽位
engine-server-model = { $model } 是服务器上的模型：本地引擎只加载模型文件
engine-compare-two-models = 比较至少需要两个模型
engine-compare-nothing = 没有可比较的内容：从 { $n } 个词元中的第 { $from } 个开始（每个词元依据它前面的词元比较，所以从 1 开始）
engine-compare-bad-token-id = 词元 id { $id } 不在 { $model } 的词表中（共 { $n } 个词元）
engine-vocab-sizes = { $a } 个词元对 { $b } 个
engine-vocab-token-differs = 词元 { $id } 不同
engine-vocabularies-differ = { $a } 和 { $b } 的词表不同（{ $differ }）：逐词元比较需要相同的词元；请比较同一模型的不同变体（例如用 `tokenscope quantize` 制作的）
engine-compare-top-k = 比较时每个模型最多报告 { $max } 个首选词元，不能是 { $top } 个
engine-kv-tokens = 请求了 { $n } 个词元：不用 KV 缓存的对比在每个词元前都要重新计算整个序列，所以只接受 1 到 { $max } 个词元
engine-char-complete = 词元 { $id }（{ $piece }）并不以不完整的 UTF-8 字符结尾：没有需要补全的字符
engine-char-no-room = 上下文（{ $n } 个词元）已没有空间来补全一个字符（上下文共 { $n_ctx } 个词元）
engine-ask-recurrent = 这个模型（循环或混合架构）只保留最新状态：无法在不改变对话的情况下在其旁边强制输入一段文本
engine-ask-no-context = 询问一段文本需要至少一个词元的上下文（这一步的）
engine-ask-text-long = 这段文本有 { $n } 个词元；一次最多询问 { $max } 个
engine-ask-probe-many = 要探查 { $n } 个词元；一次最多 { $max } 个
engine-ask-too-long = 上下文加文本（{ $n } 个词元）超出了上下文（{ $n_ctx } 个词元）
engine-ask-text-token = 这段文本产生了词元 id { $id }，不在词表中
engine-prompt-scores-paused = 要打分的提示词不是暂停中回复的提示词：请在回复结束后再打分
engine-prompt-scores-recurrent = 这个模型（循环或混合架构）只保留最新状态：它的提示词在预填充时打分（`score_prompt`），之后无法再打分
engine-prompt-scores-top-k = top_k_inspect { $top } 超过了 { $max }
engine-prompt-scores-too-long = { $n } 个词元超出了上下文（{ $n_ctx } 个词元）
engine-prompt-scores-position = 位置 { $position } 无法打分：位置应为 1 到 { $last }（一个词元由它前面的词元预测）
lens-engine-head-rows = 输出矩阵有 { $rows } 行，而词表有 { $n } 个词元
lens-engine-local-file = 层透镜需要本地模型文件
rollouts-engine-paused = 暂停中回复里的展开从它的下一步开始，基于它当前所在的上下文：要展开更早的词元，请等回复结束
rollouts-engine-count = 请求了 { $n } 条展开：请求 2 到 { $max } 条（只有一条就是回复本身）
rollouts-engine-no-tokens = 请求了 0 个词元的展开：每条展开至少要 1 个词元
# 远程服务器做不到的事（Capabilities::refuses 的 { $what }）
engine-remote-refuses = { $what }需要模型在每一步的 logits，而 { $where } 上的远程服务器不提供（它只报告每个词元少数几个候选的对数概率）：请为此加载本地模型
engine-what-step-mode = 单步模式
engine-what-branch-tokens = 从确切的词元继续回复（分支）
engine-what-score-text = 为文本打分
engine-what-score-prompt = 为提示词打分
engine-what-ask-text = 询问一段文本
engine-what-ask-model-text = 向模型询问一段文本
engine-what-rollouts = 展开排名靠前的候选
engine-what-rollouts-capital = 展开排名靠前的候选
engine-what-compare = 比较模型
engine-what-compare-other = 与另一个模型比较
engine-what-kv-timing = KV 缓存计时
engine-what-choose-token = 在此选择另一个词元（分支）
engine-what-resample = 重新采样一个词元（分支）
engine-what-continue = 从回复的词元继续回复
engine-remote-lens = 层透镜读取模型计算图内部的残差流和注意力，而 { $url } 上的服务器不通过 HTTP 提供它们：请为此加载本地模型文件
engine-remote-kv = KV 缓存省下了什么只能在本进程中的模型上测量：{ $url } 上的服务器不公开它的缓存；请为此加载本地模型
engine-remote-not-its-model = { $model } 不是 { $url } 上服务器的模型：这个引擎只加载该服务器的模型
engine-remote-prefix-raw = 在远程引擎上，用给定文本开始回复只能配合 --raw 使用（它的聊天接口自己开始回复）
# 聊天模板的说明（engine/template.rs、engine/prompt.rs）
template-summary-syntax = 聊天模板无法解析（{ $detail }）
template-summary-raised = 聊天模板报错（{ $detail }）
template-summary-render = 聊天模板渲染失败（{ $detail }）
template-refuses-system = 聊天模板不接受系统提示词（{ $message }）：已将它放在你第一条消息的开头
template-used-builtin = { $why }：改用了 llama.cpp 为这个模型内置的模板
template-used-plain = { $why }：对话以纯文本形式交给了模型
# 远程服务器错误里的原因和提示（engine/remote/client.rs、target.rs、models.rs）
remote-no-connection = { $seconds } 秒内没有建立连接
remote-host-unknown = 主机名无法解析
remote-refused = 连接被拒绝
remote-key-wrong = 密钥错误或在此处不被允许；请检查 --api-key-env（或配置中的 api_key_env）指定的环境变量
remote-key-wanted = 服务器需要 API 密钥：请把它放进一个环境变量，并用 --api-key-env NAME（或配置中的 api_key_env）指定该变量
remote-hint-llama-server = 这个 llama-server 忽略了 `logprobs`；请使用较新的版本（2024 年起的版本会报告它们）
remote-hint-openai = 启动服务器时请允许返回对数概率（vLLM：`--max-logprobs 20`；其他服务器：请查阅其文档中的 `logprobs` / `top_logprobs`）
remote-url-not-url = 这不是一个 URL
remote-url-credentials = 其中含有用户名或密码：请用 --api-key-env NAME（或 [[servers]] 中的 api_key_env）提供密钥
remote-url-scheme = 协议是 { $scheme }，不是 http 或 https
remote-url-no-scheme = 缺少协议：请写成 http://HOST:PORT
remote-url-no-host = 缺少主机
remote-url-query = 含有查询部分（?…）：请给出服务器的基础 URL
engine-score-windows = 这段文本有 { $n } 个词元，超过了 { $ctx } 的上下文：分成 { $windows } 个相互重叠、每个至多 { $ctx } 个词元的窗口来打分，每个窗口都从头计算；每个词元只打分一次，且前面至少有 { $before } 个词元
