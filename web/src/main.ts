import { createApp, watch } from 'vue';
import App from './App.vue';
import { browserDeps } from './lib/browser.js';
import { setAppDeps } from './lib/deps.js';
import { createAppRouter } from './router.js';
import { useAuth } from './stores/auth.js';
import { createPinia } from './stores/pinia.js';
import './styles.css';

setAppDeps(browserDeps());
const pinia = createPinia();
const router = createAppRouter(pinia);
const app = createApp(App);
app.use(pinia);
app.use(router);

// Signed out (by the button or an expired session): every page but the public ones goes to sign-in.
const auth = useAuth(pinia);
watch(
  () => auth.signedIn,
  (signedIn) => {
    const current = router.currentRoute.value;
    if (!signedIn && !current.meta.public) {
      void router.replace({ name: 'sign-in', query: { next: current.fullPath } });
    }
  },
);

app.mount('#app');
